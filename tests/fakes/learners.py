"""In-memory hub.core.ports.Learners."""

from __future__ import annotations

from collections.abc import Sequence

from hub.core.records import Learnt
from tests.fakes.state import FakeRepo


class FakeLearners(FakeRepo):
    async def remember(self, refid: str, schools: Sequence[str], upn: str | None) -> bool:
        if schools:
            self._state.learner_schools.setdefault(refid, set()).update(schools)
        if upn is not None:
            self._state.upn_history.add((refid, upn))
        if upn is None or self._state.upns.get(refid) == upn:  # None never forgets
            return False
        self._state.upns[refid] = upn
        return True

    async def schools(self, refid: str) -> frozenset[str]:
        return frozenset(self._state.learner_schools.get(refid, ()))

    async def schools_of(self, refids: Sequence[str]) -> dict[str, frozenset[str]]:
        known = self._state.learner_schools
        return {r: frozenset(known[r]) for r in refids if known.get(r)}

    async def upns(self, refids: Sequence[str]) -> dict[str, str]:
        return {r: self._state.upns[r] for r in refids if r in self._state.upns}

    async def former_upns(self, refids: Sequence[str]) -> dict[str, frozenset[str]]:
        wanted = set(refids)
        former: dict[str, set[str]] = {}
        for refid, upn in self._state.upn_history:
            if refid in wanted and upn != self._state.upns.get(refid):
                former.setdefault(refid, set()).add(upn)
        return {r: frozenset(u) for r, u in former.items()}

    async def remember_object(self, object_refid: str, object_name: str, learner: str) -> bool:
        changed = self._state.object_learners.get(object_refid) != learner
        self._state.object_learners[object_refid] = learner
        return changed

    async def learners_of(self, object_refids: Sequence[str]) -> dict[str, str]:
        known = self._state.object_learners
        return {o: known[o] for o in object_refids if o in known}

    async def remember_many(self, learnt: Sequence[Learnt]) -> tuple[list[str], list[str]]:
        learners, objects = [], []
        for fact in learnt:
            if await self.remember(fact.learner, fact.schools, fact.upn):
                learners.append(fact.learner)
            refid = fact.object_refid
            if refid and await self.remember_object(refid, fact.object_name or "", fact.learner):
                objects.append(refid)
        return list(dict.fromkeys(learners)), list(dict.fromkeys(objects))
