"""FakeStore: hub.core.ports.Store in memory, for fast unit tests of pipeline logic.

A transaction works on a private copy of the committed state and replaces it only when its
block exits cleanly, so a transaction that raises leaves no trace. Transactions run one
at a time (as on SQLite). `unavailable = True` makes the store refuse like a database
that is down. Read `store.state` afresh after a transaction: it is a new object.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hub.core.ports import DuplicateMessage, StoreUnavailable
from hub.core.records import Staged
from hub.store.group import GroupCommit
from tests.fakes.admin_users import FakeAdminUsers
from tests.fakes.agreements import FakeAgreements
from tests.fakes.alerts import FakeAlerts
from tests.fakes.audit import FakeAudit
from tests.fakes.csv_transactions import FakeCsvTransactions
from tests.fakes.disclosures import FakeDisclosures
from tests.fakes.exports import FakeExports
from tests.fakes.feeds import FakeFeeds
from tests.fakes.held import FakeHeld
from tests.fakes.journeys import FakeJourneys
from tests.fakes.learners import FakeLearners
from tests.fakes.messages import FakeMessages
from tests.fakes.outbox import FakeOutbox
from tests.fakes.privacy import FakePrivacy
from tests.fakes.registrations import FakeRegistrations
from tests.fakes.retention import FakeRetention
from tests.fakes.state import State
from tests.fakes.webhooks import FakeWebhooks

if TYPE_CHECKING:
    from hub.core.ports import Stage, Store, Tx


@dataclass(frozen=True, kw_only=True)
class FakeTx:
    messages: FakeMessages
    outbox: FakeOutbox
    registrations: FakeRegistrations
    learners: FakeLearners
    agreements: FakeAgreements
    privacy: FakePrivacy
    held: FakeHeld
    disclosures: FakeDisclosures
    audit: FakeAudit
    retention: FakeRetention
    admin_users: FakeAdminUsers
    webhooks: FakeWebhooks
    journeys: FakeJourneys
    exports: FakeExports
    feeds: FakeFeeds
    alerts: FakeAlerts
    csv_transactions: FakeCsvTransactions

    @classmethod
    def on(cls, state: State) -> FakeTx:
        return cls(
            messages=FakeMessages(state),
            outbox=FakeOutbox(state),
            registrations=FakeRegistrations(state),
            learners=FakeLearners(state),
            agreements=FakeAgreements(state),
            privacy=FakePrivacy(state),
            held=FakeHeld(state),
            disclosures=FakeDisclosures(state),
            audit=FakeAudit(state),
            retention=FakeRetention(state),
            admin_users=FakeAdminUsers(state),
            webhooks=FakeWebhooks(state),
            journeys=FakeJourneys(state),
            exports=FakeExports(state),
            feeds=FakeFeeds(state),
            alerts=FakeAlerts(state),
            csv_transactions=FakeCsvTransactions(state),
        )


class FakeStore:
    def __init__(self) -> None:
        self.state = State()
        self.unavailable = False
        self._serial = asyncio.Lock()
        # The real writer (hub.store.group) over the fake tables: pipeline tests see groups.
        self.group: GroupCommit[FakeTx, Staged] = GroupCommit(self.transaction, _prepare, _write)

    async def accept(self, stage: Stage, *, agent_id: str, sif_msg_id: str) -> bool:
        return await self.group.submit(stage, (agent_id, sif_msg_id))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[FakeTx]:
        async with self._serial:
            self._refuse_if_down()
            working = self.state.working_copy()
            yield FakeTx.on(working)
            self._refuse_if_down()  # a commit can fail too
            self.state = working

    async def ping(self) -> None:
        self._refuse_if_down()

    async def reclaim_space(self, full: bool = False) -> None:
        self._refuse_if_down()

    def _refuse_if_down(self) -> None:
        if self.unavailable:
            raise StoreUnavailable("fake store: database unavailable")


async def _prepare(tx: FakeTx, keys: list[tuple[str, str]]) -> None:
    """Nothing to look up ahead: the fake's exists() costs nothing."""


async def _write(tx: FakeTx, group: list[Staged]) -> list[bool]:
    """One staged message at a time, as ingest would through the repositories."""
    accepted: list[bool] = []
    for staged in group:
        try:
            await tx.messages.add(staged.message)
        except DuplicateMessage:
            accepted.append(False)
            continue
        await tx.outbox.add(staged.outbox)
        for entry in staged.audit:
            await tx.audit.add(entry)
        learners, objects = await tx.learners.remember_many(staged.learnt)
        if learners or objects:
            await tx.held.wake_identities(staged.at, learners=learners, object_refids=objects)
        accepted.append(True)
    return accepted


if TYPE_CHECKING:

    def _conforms(store: FakeStore, tx: FakeTx) -> tuple[Store, Tx]:
        """Checked by mypy only: the fakes satisfy the pipeline's protocols."""
        return store, tx
