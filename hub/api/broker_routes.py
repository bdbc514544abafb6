"""Admin API for an LA service's own broker credentials (users provisioned by
hub.amqp.provision: read its own queue, nothing else)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from hub.amqp.provision import BrokerUsers, Credentials, UserConflict
from hub.api.admin_auth import AdminRoleDep
from hub.api.deps import HubDep
from hub.api.openapi import problem_doc
from hub.api.problems import Problem
from hub.composition import Hub
from hub.core.ports import BrokerUnavailable, StoreUnavailable
from hub.core.records import Actor, audited

router = APIRouter(prefix="/admin")


class BrokerCredentials(BaseModel):
    username: str = Field(description="RabbitMQ user; may consume its own queue and nothing else")
    password: str = Field(description="Shown once: the hub keeps no copy; issue again to rotate")
    queue: str = Field(description="The one queue this user may read")


@router.post(
    "/subscribers/{subscriber_id}/credentials",
    responses={
        404: problem_doc("Unknown subscriber"),
        409: problem_doc(
            "Not an AMQP subscriber, broker users are not provisioned, or the name is taken"
        ),
        503: problem_doc("The broker's management API or the database is unreachable"),
    },
)
async def issue_credentials(
    subscriber_id: str, hub: HubDep, actor: AdminRoleDep, response: Response
) -> BrokerCredentials:
    """Issue (or rotate) the subscriber's broker password: the old one stops working and
    its open connections are closed. Audited with the actor, never the password."""
    subscriber = hub.config.subscriber(subscriber_id)
    if subscriber is None:
        raise Problem(404, "Unknown subscriber", f"No subscriber {subscriber_id!r}")
    if subscriber.delivery.type != "amqp":  # the hub itself reads its queue
        raise Problem(409, "Not an AMQP subscriber", "Its copies are delivered by the hub")
    if hub.broker_users is None:
        raise Problem(409, "Broker users are not provisioned", "HUB_AMQP_PROVISION_USERS is false")
    credentials = await _issue(hub, hub.broker_users, subscriber_id, actor)
    response.headers["Cache-Control"] = "no-store"
    return BrokerCredentials(
        username=credentials.username, password=credentials.password, queue=credentials.queue
    )


async def _issue(hub: Hub, users: BrokerUsers, subscriber_id: str, actor: Actor) -> Credentials:
    """Rotate, then audit. The rotation is not held inside a database transaction (it may
    wait on the management API); if the audit row cannot be written, the new password is
    withheld, so no credentials ever leave unaccounted for."""
    try:
        credentials = await users.issue(subscriber_id)
    except BrokerUnavailable:
        raise Problem(
            503, "Broker management unavailable", "The broker's management API is unreachable"
        ) from None
    except UserConflict as exc:
        raise Problem(409, "Broker user conflict", str(exc)) from None
    audit = audited(
        actor,
        hub.clock(),
        "broker.credentials_issued",
        subscriber_id,
        {"username": credentials.username},
    )
    try:
        async with hub.store.transaction() as tx:
            await tx.audit.add(audit)
    except StoreUnavailable:
        raise Problem(
            503,
            "Database unavailable",
            "The password was changed but could not be audited, so it is withheld: issue again",
        ) from None
    return credentials
