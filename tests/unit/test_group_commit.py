"""The group-commit writer (hub.store.group) over a toy transaction: groups form from
concurrent requests, each is answered only after its group's commit, in order, and every
failure reaches every request it concerns (never a silent drop, never an early ack)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from sqlalchemy.exc import OperationalError

from hub.core.ports import StoreUnavailable
from hub.store.group import GroupCommit

Key = tuple[str, str]


@dataclass
class ToyTx:
    rows: list[str] = field(default_factory=list)


@dataclass
class ToyDb:
    """Committed rows, the groups that committed, and switches to make it fail."""

    committed: list[str] = field(default_factory=list)
    groups: list[list[str]] = field(default_factory=list)
    commit_gate: asyncio.Event | None = None
    fail_commit: Exception | None = None
    fail_write_for: str | None = None
    transactions: int = 0

    @asynccontextmanager
    async def begin(self) -> AsyncIterator[ToyTx]:
        self.transactions += 1
        tx = ToyTx()
        yield tx
        if self.commit_gate is not None:
            await self.commit_gate.wait()
        if self.fail_commit is not None:
            raise self.fail_commit
        self.committed += tx.rows
        self.groups.append(list(tx.rows))

    async def prepare(self, tx: ToyTx, keys: list[Key]) -> None:
        return None

    async def write(self, tx: ToyTx, staged: list[str]) -> list[bool]:
        if self.fail_write_for in staged:
            raise OperationalError("INSERT", {}, Exception("constraint"))
        accepted = []
        for row in staged:  # a row already there is a duplicate
            new = row not in self.committed and row not in tx.rows
            if new:
                tx.rows.append(row)
            accepted.append(new)
        return accepted


def writer(db: ToyDb, **kwargs: float) -> GroupCommit[ToyTx, str]:
    return GroupCommit(db.begin, db.prepare, db.write, **kwargs)  # type: ignore[arg-type]


def stage(row: str) -> Callable[[ToyTx], Awaitable[str | None]]:
    async def run(tx: ToyTx) -> str | None:
        return row

    return run


def refused(error: Exception) -> Callable[[ToyTx], Awaitable[str | None]]:
    async def run(tx: ToyTx) -> str | None:
        raise error

    return run


async def test_concurrent_requests_share_one_transaction_in_arrival_order() -> None:
    db = ToyDb()
    group = writer(db)
    rows = [f"m{i}" for i in range(20)]
    results = await asyncio.gather(*(group.submit(stage(r), ("a", r)) for r in rows))
    assert results == [True] * 20
    assert db.groups == [rows]  # one group, one commit, in the order they came
    assert group.groups == 1


async def test_no_request_is_answered_before_its_commit() -> None:
    db = ToyDb(commit_gate=asyncio.Event())
    group = writer(db)
    pending = [asyncio.create_task(group.submit(stage(f"m{i}"), ("a", f"m{i}"))) for i in range(3)]
    for _ in range(20):
        await asyncio.sleep(0)
    assert not any(task.done() for task in pending)
    assert db.committed == []
    assert db.commit_gate is not None
    db.commit_gate.set()
    assert await asyncio.gather(*pending) == [True, True, True]
    assert db.committed == ["m0", "m1", "m2"]


async def test_later_arrivals_form_the_next_group() -> None:
    db = ToyDb(commit_gate=asyncio.Event())
    group = writer(db)
    first = asyncio.create_task(group.submit(stage("m0"), ("a", "m0")))
    for _ in range(5):
        await asyncio.sleep(0)
    later = [asyncio.create_task(group.submit(stage(f"m{i}"), ("a", f"m{i}"))) for i in (1, 2)]
    assert db.commit_gate is not None
    db.commit_gate.set()
    assert await first
    assert list(await asyncio.gather(*later)) == [True, True]
    assert db.groups == [["m0"], ["m1", "m2"]]


async def test_duplicates_inside_a_group_and_across_groups() -> None:
    db = ToyDb()
    group = writer(db)
    results = await asyncio.gather(
        group.submit(stage("m1"), ("a", "m1")), group.submit(stage("m1"), ("a", "m1"))
    )
    assert list(results) == [True, False]
    assert await group.submit(stage("m1"), ("a", "m1")) is False
    assert db.committed == ["m1"]


async def test_a_stage_that_finds_a_duplicate_writes_nothing() -> None:
    db = ToyDb()
    group = writer(db)

    async def already(tx: ToyTx) -> str | None:
        return None

    assert await group.submit(already, ("a", "m1")) is False
    assert db.committed == []


async def test_a_refusal_fails_only_its_own_request() -> None:
    db = ToyDb()
    group = writer(db)
    results = await asyncio.gather(
        group.submit(stage("m1"), ("a", "m1")),
        group.submit(refused(ValueError("not registered")), ("a", "m2")),
        group.submit(stage("m3"), ("a", "m3")),
        return_exceptions=True,
    )
    assert results[0] is True and results[2] is True
    assert isinstance(results[1], ValueError)
    assert db.groups == [["m1", "m3"]]


async def test_an_unavailable_store_fails_every_request_of_the_group() -> None:
    db = ToyDb(fail_commit=StoreUnavailable("disk full"))
    group = writer(db)
    results = await asyncio.gather(
        *(group.submit(stage(f"m{i}"), ("a", f"m{i}")) for i in range(4)),
        return_exceptions=True,
    )
    assert all(isinstance(r, StoreUnavailable) for r in results)
    assert db.committed == []
    db.fail_commit = None  # the store is back: the agents' resends are accepted
    assert await group.submit(stage("m0"), ("a", "m0")) is True


async def test_a_failed_group_is_retried_one_request_at_a_time() -> None:
    db = ToyDb(fail_write_for="bad")
    group = writer(db)
    results = await asyncio.gather(
        group.submit(stage("m1"), ("a", "m1")),
        group.submit(stage("bad"), ("a", "bad")),
        group.submit(stage("m3"), ("a", "m3")),
        return_exceptions=True,
    )
    assert results[0] is True and results[2] is True
    assert isinstance(results[1], OperationalError)
    assert db.committed == ["m1", "m3"]
    assert db.groups == [["m1"], ["m3"]]


async def test_a_database_error_in_a_stage_does_not_spoil_the_others() -> None:
    db = ToyDb()
    group = writer(db)
    results = await asyncio.gather(
        group.submit(stage("m1"), ("a", "m1")),
        group.submit(refused(OperationalError("SELECT", {}, Exception("x"))), ("a", "m2")),
        return_exceptions=True,
    )
    assert results[0] is True
    assert isinstance(results[1], OperationalError)
    assert db.committed == ["m1"]


async def test_groups_are_bounded() -> None:
    db = ToyDb()
    group = writer(db, max_units=3)
    rows = [f"m{i}" for i in range(7)]
    assert all(await asyncio.gather(*(group.submit(stage(r), ("a", r)) for r in rows)))
    assert [len(g) for g in db.groups] == [3, 3, 1]


async def test_a_request_that_went_away_before_its_group_is_not_written() -> None:
    db = ToyDb(commit_gate=asyncio.Event())
    group = writer(db)
    first = asyncio.create_task(group.submit(stage("m0"), ("a", "m0")))
    for _ in range(5):
        await asyncio.sleep(0)
    gone = asyncio.create_task(group.submit(stage("gone"), ("a", "gone")))
    await asyncio.sleep(0)
    gone.cancel()
    assert db.commit_gate is not None
    db.commit_gate.set()
    assert await first is True
    with pytest.raises(asyncio.CancelledError):
        await gone
    await group.close()
    assert db.committed == ["m0"]
