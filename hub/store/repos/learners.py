"""What the hub learnt about each learner (implements hub.core.ports.Learners): the schools
objects showed it at (only ever added), its UPN, and each learner-scoped object's learner."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select

from hub.core.records import Learnt
from hub.store.models import learner_schools, learner_upns, learners, object_learners
from hub.store.repos.base import IN_CHUNK, SqlRepo, chunks, utcnow


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
        await self._keep_upns([(refid, upn)], now)
        insert = self._insert(learners).values(refid=refid, upn=upn, updated_at=now)
        statement = insert.on_conflict_do_update(
            index_elements=["refid"],
            set_={"upn": insert.excluded.upn, "updated_at": insert.excluded.updated_at},
            where=learners.c.upn.is_distinct_from(insert.excluded.upn),
        )
        return bool((await self._execute(statement)).rowcount)

    async def remember_many(self, learnt: Sequence[Learnt]) -> tuple[list[str], list[str]]:
        """remember and remember_object for a group's objects at once, in their order (the
        last UPN or learner given for one RefId wins); the learners whose UPN and the
        objects whose learner became known or changed."""
        now = utcnow()
        pairs = {(f.learner, s): None for f in learnt for s in f.schools}
        if pairs:
            rows = [{"refid": r, "laestab": s, "first_seen": now} for r, s in pairs]
            statement = self._insert(learner_schools).on_conflict_do_nothing(
                index_elements=["refid", "laestab"]
            )
            await self._execute(statement, rows)
        upns = {f.learner: f.upn for f in learnt if f.upn is not None}
        objects = {f.object_refid: f for f in learnt if f.object_refid}
        await self._keep_upns([(f.learner, f.upn) for f in learnt if f.upn is not None], now)
        woken_learners: list[str] = []
        for chunk in _batches(list(upns)):
            insert = self._insert(learners).values(
                [{"refid": r, "upn": upns[r], "updated_at": now} for r in chunk]
            )
            upsert = insert.on_conflict_do_update(
                index_elements=["refid"],
                set_={"upn": insert.excluded.upn, "updated_at": insert.excluded.updated_at},
                where=learners.c.upn.is_distinct_from(insert.excluded.upn),
            ).returning(learners.c.refid)
            woken_learners += [str(r) for r in (await self._execute(upsert)).scalars()]
        woken_objects: list[str] = []
        for chunk in _batches(list(objects)):
            values = [
                {
                    "object_refid": o,
                    "object_name": objects[o].object_name or "",
                    "learner_refid": objects[o].learner,
                    "updated_at": now,
                }
                for o in chunk
            ]
            insert = self._insert(object_learners).values(values)
            upsert = insert.on_conflict_do_update(
                index_elements=["object_refid"],
                set_={
                    "learner_refid": insert.excluded.learner_refid,
                    "updated_at": insert.excluded.updated_at,
                },
                where=object_learners.c.learner_refid != insert.excluded.learner_refid,
            ).returning(object_learners.c.object_refid)
            woken_objects += [str(r) for r in (await self._execute(upsert)).scalars()]
        return woken_learners, woken_objects

    async def _keep_upns(self, pairs: Sequence[tuple[str, str]], now: datetime) -> None:
        """Every UPN a learner is shown with, kept for good (learner_upns)."""
        unique = list(dict.fromkeys(pairs))
        for start in range(0, len(unique), IN_CHUNK):
            rows = [
                {"refid": r, "upn": u, "first_seen": now}
                for r, u in unique[start : start + IN_CHUNK]
            ]
            statement = self._insert(learner_upns).on_conflict_do_nothing(
                index_elements=["refid", "upn"]
            )
            await self._execute(statement, rows)

    async def former_upns(self, refids: Sequence[str]) -> dict[str, frozenset[str]]:
        former: dict[str, set[str]] = {}
        for chunk in chunks(refids):
            query = (
                select(learner_upns.c.refid, learner_upns.c.upn)
                .join(learners, learners.c.refid == learner_upns.c.refid, isouter=True)
                .where(
                    learner_upns.c.refid.in_(chunk),
                    learners.c.upn.is_distinct_from(learner_upns.c.upn),
                )
            )
            for row in (await self._execute(query)).all():
                former.setdefault(row.refid, set()).add(row.upn)
        return {r: frozenset(u) for r, u in former.items()}

    async def schools(self, refid: str) -> frozenset[str]:
        return (await self.schools_of([refid])).get(refid, frozenset())

    async def schools_of(self, refids: Sequence[str]) -> dict[str, frozenset[str]]:
        found: dict[str, set[str]] = {}
        for chunk in chunks(refids):
            query = select(learner_schools.c.refid, learner_schools.c.laestab).where(
                learner_schools.c.refid.in_(chunk)
            )
            for row in (await self._execute(query)).all():
                found.setdefault(row.refid, set()).add(row.laestab)
        return {r: frozenset(s) for r, s in found.items()}

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


def _batches(keys: list[str]) -> list[list[str]]:
    """Rows per multi-row upsert: four bind parameters each, well under the drivers' limit."""
    return [keys[start : start + IN_CHUNK] for start in range(0, len(keys), IN_CHUNK)]
