"""SqlTx: one open transaction, one repository per aggregate (implements hub.core.ports.Tx).

Every repository shares the one connection, so whatever a caller does through several of
them in one `async with store.transaction()` block commits or rolls back together.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from hub.store.repos.admin_users import SqlAdminUsers
from hub.store.repos.agreements import SqlAgreements
from hub.store.repos.alerts import SqlAlerts
from hub.store.repos.audit import SqlAudit
from hub.store.repos.csv_transactions import SqlCsvTransactions
from hub.store.repos.disclosures import SqlDisclosures
from hub.store.repos.exports import SqlExports
from hub.store.repos.feeds import SqlFeeds
from hub.store.repos.held import SqlHeld
from hub.store.repos.journeys import SqlJourneys
from hub.store.repos.learners import SqlLearners
from hub.store.repos.messages import SqlMessages
from hub.store.repos.outbox import SqlOutbox
from hub.store.repos.privacy import SqlPrivacy
from hub.store.repos.registrations import SqlRegistrations
from hub.store.repos.retention import SqlRetention
from hub.store.repos.webhooks import SqlWebhooks


@dataclass(frozen=True, kw_only=True)
class SqlTx:
    messages: SqlMessages
    outbox: SqlOutbox
    registrations: SqlRegistrations
    learners: SqlLearners
    agreements: SqlAgreements
    privacy: SqlPrivacy
    held: SqlHeld
    disclosures: SqlDisclosures
    audit: SqlAudit
    retention: SqlRetention
    admin_users: SqlAdminUsers
    webhooks: SqlWebhooks
    journeys: SqlJourneys
    exports: SqlExports
    feeds: SqlFeeds
    alerts: SqlAlerts
    csv_transactions: SqlCsvTransactions

    @classmethod
    def on(cls, connection: AsyncConnection) -> SqlTx:
        """The repositories over `connection`, which is already inside a transaction."""
        return cls(
            messages=SqlMessages(connection),
            outbox=SqlOutbox(connection),
            registrations=SqlRegistrations(connection),
            learners=SqlLearners(connection),
            agreements=SqlAgreements(connection),
            privacy=SqlPrivacy(connection),
            held=SqlHeld(connection),
            disclosures=SqlDisclosures(connection),
            audit=SqlAudit(connection),
            retention=SqlRetention(connection),
            admin_users=SqlAdminUsers(connection),
            webhooks=SqlWebhooks(connection),
            journeys=SqlJourneys(connection),
            exports=SqlExports(connection),
            feeds=SqlFeeds(connection),
            alerts=SqlAlerts(connection),
            csv_transactions=SqlCsvTransactions(connection),
        )
