"""In-memory hub.core.ports.Learners."""

from __future__ import annotations

from collections.abc import Sequence

from tests.fakes.state import FakeRepo, Learner


class FakeLearners(FakeRepo):
    async def remember(self, refid: str, school: str | None, upn: str | None) -> None:
        if school is None and upn is None:
            return
        known = self._state.learners.get(refid, Learner(school=None, upn=None))
        # COALESCE(new, old), as the SQL upsert: a None never forgets what was known.
        self._state.learners[refid] = Learner(
            school=school if school is not None else known.school,
            upn=upn if upn is not None else known.upn,
        )

    async def school(self, refid: str) -> str | None:
        known = self._state.learners.get(refid)
        return None if known is None else known.school

    async def upns(self, refids: Sequence[str]) -> dict[str, str]:
        found = {refid: self._state.learners.get(refid) for refid in refids}
        return {refid: k.upn for refid, k in found.items() if k is not None and k.upn is not None}
