"""What the hub learnt about each learner (implements hub.core.ports.Learners): the schools
objects showed it at (only ever added), its UPN, and each learner-scoped object's learner."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from hub.store.models import learner_schools, learners, object_learners
from hub.store.repos.base import SqlRepo, chunks, utcnow


class SqlLearners(SqlRepo):
    async def remember(self, refid: str, schools: Sequence[str], upn: str | None) -> bool:
        now = utcnow()
        if schools:
            rows = [
                {"refid": refid, "laestab": s, "first_seen": now} for s in dict.fromkeys(schools)
            ]
            statement = self._insert(learner_schools).on_conflict_do_nothing(
                index_elements=["refid", "laestab"]
            )
            await self._execute(statement, rows)
        if upn is None:
            return False  # a partial Change must not forget the UPN
        insert = self._insert(learners).values(refid=refid, upn=upn, updated_at=now)
        statement = insert.on_conflict_do_update(
            index_elements=["refid"],
            set_={"upn": insert.excluded.upn, "updated_at": insert.excluded.updated_at},
            where=learners.c.upn.is_distinct_from(insert.excluded.upn),
        )
        return bool((await self._execute(statement)).rowcount)

    async def schools(self, refid: str) -> frozenset[str]:
        query = select(learner_schools.c.laestab).where(learner_schools.c.refid == refid)
        return frozenset(str(s) for s in (await self._execute(query)).scalars().all())

    async def upns(self, refids: Sequence[str]) -> dict[str, str]:
        """{refid: UPN} for the refids whose UPN is known; unknown refids are left out."""
        found: dict[str, str] = {}
        for chunk in chunks(refids):
            query = select(learners.c.refid, learners.c.upn).where(
                learners.c.refid.in_(chunk), learners.c.upn.is_not(None)
            )
            found.update({row.refid: row.upn for row in (await self._execute(query)).all()})
        return found

    async def remember_object(self, object_refid: str, object_name: str, learner: str) -> bool:
        insert = self._insert(object_learners).values(
            object_refid=object_refid,
            object_name=object_name,
            learner_refid=learner,
            updated_at=utcnow(),
        )
        statement = insert.on_conflict_do_update(
            index_elements=["object_refid"],
            set_={
                "learner_refid": insert.excluded.learner_refid,
                "updated_at": insert.excluded.updated_at,
            },
            where=object_learners.c.learner_refid != insert.excluded.learner_refid,
        )
        return bool((await self._execute(statement)).rowcount)

    async def learners_of(self, object_refids: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        table = object_learners
        for chunk in chunks(object_refids):
            query = select(table.c.object_refid, table.c.learner_refid).where(
                table.c.object_refid.in_(chunk)
            )
            rows = (await self._execute(query)).all()
            found.update({row.object_refid: row.learner_refid for row in rows})
        return found

    async def remember_objects(self, items: Sequence[tuple[str, str, str]]) -> list[str]:
        latest = {refid: (name, learner) for refid, name, learner in items}
        known = await self.learners_of(list(latest))
        changed = [refid for refid, (_, learner) in latest.items() if known.get(refid) != learner]
        if changed:
            now = utcnow()
            rows = [
                {
                    "object_refid": refid,
                    "object_name": latest[refid][0],
                    "learner_refid": latest[refid][1],
                    "updated_at": now,
                }
                for refid in changed
            ]
            insert = self._insert(object_learners)
            statement = insert.on_conflict_do_update(
                index_elements=["object_refid"],
                set_={
                    "learner_refid": insert.excluded.learner_refid,
                    "updated_at": insert.excluded.updated_at,
                },
            )
            await self._execute(statement, rows)
        return changed

    async def remember_many(
        self, items: Sequence[tuple[str, Sequence[str], str | None]]
    ) -> list[str]:
        now = utcnow()
        shown = {(refid, s) for refid, schools, _ in items for s in schools}
        if shown:
            rows = [{"refid": r, "laestab": s, "first_seen": now} for r, s in sorted(shown)]
            statement = self._insert(learner_schools).on_conflict_do_nothing(
                index_elements=["refid", "laestab"]
            )
            await self._execute(statement, rows)
        upns = {refid: upn for refid, _, upn in items if upn is not None}  # None never forgets
        known = await self.upns(list(upns))
        changed = [refid for refid, upn in upns.items() if known.get(refid) != upn]
        if changed:
            insert = self._insert(learners)
            statement = insert.on_conflict_do_update(
                index_elements=["refid"],
                set_={"upn": insert.excluded.upn, "updated_at": insert.excluded.updated_at},
            )
            await self._execute(
                statement, [{"refid": r, "upn": upns[r], "updated_at": now} for r in changed]
            )
        return changed
