"""Group commit: one writer per store turns many concurrent requests into one transaction.

Requests hand the writer a unit: a read-only *stage* (the request's checks, run inside the
group's transaction) and the key of the message it accepts. The writer takes every unit
waiting (up to `max_units`), runs their stages one after another in ONE transaction, writes
all the rows they staged with multi-row inserts, commits once (one fsync on SQLite), and
only then answers each request. Units arriving while a group commits wait for the next
group, so groups grow with load and a lone request is not delayed (`linger` can trade a
few milliseconds of latency for bigger groups).

Failures are never silent and never acked:
- a stage that raises (a refusal, e.g. a SifError) fails its own request only: it wrote
  nothing, and the others go on;
- the store unavailable (connecting, a statement, the commit): every request of the group
  gets StoreUnavailable (the agent sends again; a repeat of a message whose commit did
  happen is then answered as a duplicate);
- any other failure of the group (a database error in a stage or in the writes, which may
  have spoilt the transaction): each request is run again alone, so one bad request
  cannot fail the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from hub.core.ports import StoreUnavailable

log = logging.getLogger(__name__)

TxT = TypeVar("TxT")
StagedT = TypeVar("StagedT")

# Units per group: bounds a transaction's length (the SQLite lock is held for all of it).
MAX_UNITS = 128


@dataclass(eq=False)
class _Unit(Generic[TxT, StagedT]):
    stage: Callable[[TxT], Awaitable[StagedT | None]]
    key: tuple[str, str]
    done: asyncio.Future[bool] = field(repr=False)

    def answer(self, accepted: bool) -> None:
        if not self.done.done():  # its request may have gone (cancelled)
            self.done.set_result(accepted)

    def fail(self, error: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(error)


# Opens the group's transaction; `prepare` is told the group's keys first (to look up
# duplicates in one statement), `write` adds the staged rows and says, for each, whether it
# was accepted (False: its message's key was already there, or earlier in the group).
Begin = Callable[[], AbstractAsyncContextManager[TxT]]
Prepare = Callable[[TxT, list[tuple[str, str]]], Awaitable[None]]
Write = Callable[[TxT, list[StagedT]], Awaitable[list[bool]]]


class GroupCommit(Generic[TxT, StagedT]):
    def __init__(
        self,
        begin: Begin[TxT],
        prepare: Prepare[TxT],
        write: Write[TxT, StagedT],
        *,
        max_units: int = MAX_UNITS,
        linger: float = 0.0,
    ) -> None:
        self._begin, self._prepare, self._write = begin, prepare, write
        self._max_units = max_units
        self._linger = linger
        self._waiting: deque[_Unit[TxT, StagedT]] = deque()
        self._writer: asyncio.Task[None] | None = None
        self.groups = 0  # committed groups (figures and tests)

    async def submit(
        self, stage: Callable[[TxT], Awaitable[StagedT | None]], key: tuple[str, str]
    ) -> bool:
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Unit(stage, key, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="group-commit")
        # Not shielded: a request that goes away stops waiting, but its unit (already in a
        # group, perhaps committed) is never torn out of the others' transaction.
        return await done

    async def close(self) -> None:
        """Let the writer finish what it holds (nothing new is taken after the HTTP server
        stopped)."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    async def _drain(self) -> None:
        try:
            while self._waiting:
                if self._linger and len(self._waiting) < self._max_units:
                    await asyncio.sleep(self._linger)
                group = self._take()
                if group:
                    await self._run(group)
        except BaseException as exc:  # cancelled at shutdown: nobody is left hanging
            for unit in self._waiting:
                unit.fail(StoreUnavailable(f"group commit stopped ({type(exc).__name__})"))
            self._waiting.clear()
            raise

    def _take(self) -> list[_Unit[TxT, StagedT]]:
        group: list[_Unit[TxT, StagedT]] = []
        while self._waiting and len(group) < self._max_units:
            unit = self._waiting.popleft()
            if not unit.done.done():  # its request already went away: never started
                group.append(unit)
        return group

    async def _run(self, group: list[_Unit[TxT, StagedT]]) -> None:
        try:
            outcomes = await self._commit(group)
        except StoreUnavailable as error:
            for unit in group:
                unit.fail(error)
            return
        except asyncio.CancelledError:
            for unit in group:
                unit.fail(StoreUnavailable("group commit stopped"))
            raise
        except Exception as error:
            if len(group) == 1:
                group[0].fail(error)
                return
            log.warning("store.group_failed units=%d error=%s", len(group), type(error).__name__)
            for unit in group:  # one at a time: one bad request cannot fail the others
                await self._run([unit])
            return
        self.groups += 1
        for unit, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                unit.fail(outcome)
            else:
                unit.answer(outcome)

    async def _commit(self, group: list[_Unit[TxT, StagedT]]) -> list[bool | BaseException]:
        """Every unit's outcome, known only once the transaction has committed."""
        outcomes: list[bool | BaseException] = []
        async with self._begin() as tx:
            await self._prepare(tx, [unit.key for unit in group])
            staged: list[StagedT] = []
            places: list[int] = []  # where each staged unit is in the group
            for unit in group:
                try:
                    rows = await unit.stage(tx)
                except (StoreUnavailable, SQLAlchemyError):
                    raise  # the transaction may be unusable: the whole group fails (above)
                except Exception as error:  # its refusal; it wrote nothing
                    outcomes.append(error)
                    continue
                outcomes.append(False)  # already accepted, unless written below
                if rows is not None:
                    places.append(len(outcomes) - 1)
                    staged.append(rows)
            accepted = await self._write(tx, staged) if staged else []
            for place, ok in zip(places, accepted, strict=True):
                outcomes[place] = ok
        return outcomes
