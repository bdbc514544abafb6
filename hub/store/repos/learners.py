"""What the hub learnt about each learner RefId (implements hub.core.ports.Learners)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select

from hub.store.models import learners
from hub.store.repos.base import SqlRepo, chunks, utcnow


class SqlLearners(SqlRepo):
    async def remember(self, refid: str, school: str | None, upn: str | None) -> None:
        if school is None and upn is None:
            return  # nothing learnt
        statement = self._insert(learners).values(
            refid=refid, school=school, upn=upn, updated_at=utcnow()
        )
        # Keep what we knew when this object does not say: a partial Change event must
        # not forget a pupil's school.
        statement = statement.on_conflict_do_update(
            index_elements=["refid"],
            set_={
                "school": func.coalesce(statement.excluded.school, learners.c.school),
                "upn": func.coalesce(statement.excluded.upn, learners.c.upn),
                "updated_at": statement.excluded.updated_at,
            },
        )
        await self._execute(statement)

    async def school(self, refid: str) -> str | None:
        query = select(learners.c.school).where(learners.c.refid == refid)
        school = (await self._execute(query)).scalar_one_or_none()
        return None if school is None else str(school)

    async def upns(self, refids: Sequence[str]) -> dict[str, str]:
        """{refid: UPN} for the refids whose UPN is known; unknown refids are left out."""
        found: dict[str, str] = {}
        for chunk in chunks(refids):
            query = select(learners.c.refid, learners.c.upn).where(
                learners.c.refid.in_(chunk), learners.c.upn.is_not(None)
            )
            found.update({row.refid: row.upn for row in (await self._execute(query)).all()})
        return found
