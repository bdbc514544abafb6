"""The hub's configuration as data: zones, schools, agents, subscribers (LA services), agreements.

Loaded from one YAML file (see deploy/examples/ and docs in README). Validation here is pure;
`hub.configfile` reads the file and maps errors back to YAML line numbers.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, StringConstraints, field_validator, model_validator

from hub.core.agreements.model import Agreement, Laestab, Strict, Token
from hub.core.alert_rules import AlertsConfig
from hub.core.urls import is_secure_target

RefId = Annotated[str, StringConstraints(pattern=r"^[0-9A-F]{32}$")]


class School(Strict):
    laestab: Laestab = Field(description="DfE number: 3-digit LA code + 4-digit establishment")
    name: str
    school_info_refid: RefId | None = None

    @property
    def la_id(self) -> str:
        return self.laestab[:3]

    @property
    def establishment_id(self) -> str:
        return self.laestab[3:]


class Agent(Strict):
    id: Token = Field(description="The agent's SIF_SourceId and HTTP Basic user name")
    secret_hash: str = Field(description="argon2 hash of the agent's secret (`hub hash-secret`)")
    schools: list[Laestab] = Field(default_factory=list)
    name: str = ""


class AmqpDelivery(Strict):
    """The default: the LA service consumes its own queue with its own broker user."""

    type: Literal["amqp"] = "amqp"
    batch: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="Copies per AMQP message: above 1, copies dispatched together leave as "
        "one SIF_CopyBatch of up to this many (README, 'Batched copies')",
    )


class WebhookDelivery(Strict):
    """The hub POSTs each released copy to the service's endpoint, signed the Standard
    Webhooks way with a secret issued through the admin API (adapters/webhook.py)."""

    type: Literal["webhook"]
    url: str = Field(description="https:// endpoint (http:// only on a loopback host)")
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    concurrency: int = Field(default=4, ge=1, le=64, description="requests in flight at once")

    @field_validator("url")
    @classmethod
    def _https(cls, url: str) -> str:
        if not is_secure_target(url):
            raise ValueError("a webhook url must be https:// (http:// only on a loopback host)")
        return url


class ApiDelivery(Strict):
    """The service pulls its released copies as JSON from `GET /api/v1/feeds/{id}` with a
    key issued through the admin API (hub/pipeline/feed.py, adapters/json_feed.py)."""

    type: Literal["api"]
    concurrency: int = Field(default=16, ge=1, le=256, description="copies stored at once")


# How a subscriber's released copies reach it; further types (file) join this union.
Delivery = Annotated[AmqpDelivery | WebhookDelivery | ApiDelivery, Field(discriminator="type")]


class Subscriber(Strict):
    id: Token
    name: str
    description: str = ""
    pull_agent: Token | None = Field(
        default=None, description="A SIF agent that drains this queue with SIF_GetMessage"
    )
    delivery: Delivery = Field(default_factory=AmqpDelivery)

    @model_validator(mode="after")
    def _one_reader(self) -> Self:
        if self.pull_agent and self.delivery.type != "amqp":
            raise ValueError("a subscriber with a pull_agent is delivered by that agent")
        if self.pull_agent and isinstance(self.delivery, AmqpDelivery) and self.delivery.batch > 1:
            raise ValueError("a pull_agent takes one SIF_Event per message: no batch")
        return self


class HubConfig(Strict):
    source_id: Token = "SIFHub"
    queue_prefix: Token = Field(default="sifhub", description="Prefix of every queue name")
    zones: list[Token] = Field(min_length=1)
    schools: list[School] = Field(default_factory=list)
    agents: list[Agent] = Field(default_factory=list)
    subscribers: list[Subscriber] = Field(default_factory=list)
    agreements: list[Agreement] = Field(default_factory=list)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)

    @model_validator(mode="after")
    def _references_resolve(self) -> Self:
        problems = [*_duplicates(self), *_dangling(self)]
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def school(self, laestab: str) -> School | None:
        return next((s for s in self.schools if s.laestab == laestab), None)

    def agent(self, agent_id: str) -> Agent | None:
        return next((a for a in self.agents if a.id == agent_id), None)

    def subscriber(self, subscriber_id: str) -> Subscriber | None:
        return next((s for s in self.subscribers if s.id == subscriber_id), None)

    def copy_batches(self) -> dict[str, int]:
        """{subscriber: copies per AMQP message} for subscribers that take batches."""
        return {
            s.id: s.delivery.batch
            for s in self.subscribers
            if isinstance(s.delivery, AmqpDelivery) and s.delivery.batch > 1
        }

    def webhook_subscribers(self) -> list[tuple[Subscriber, WebhookDelivery]]:
        return [
            (s, s.delivery) for s in self.subscribers if isinstance(s.delivery, WebhookDelivery)
        ]

    def api_subscribers(self) -> list[tuple[Subscriber, ApiDelivery]]:
        return [(s, s.delivery) for s in self.subscribers if isinstance(s.delivery, ApiDelivery)]


def _duplicates(cfg: HubConfig) -> list[str]:
    out = []
    for kind, ids in (
        ("school", [s.laestab for s in cfg.schools]),
        ("agent", [a.id for a in cfg.agents]),
        ("subscriber", [s.id for s in cfg.subscribers]),
        ("agreement", [a.id for a in cfg.agreements]),
    ):
        seen: set[str] = set()
        for item in ids:
            if item in seen:
                out.append(f"duplicate {kind} id {item!r}")
            seen.add(item)
    return out


def _dangling(cfg: HubConfig) -> list[str]:
    schools = {s.laestab for s in cfg.schools}
    subscribers = {s.id for s in cfg.subscribers}
    agents = {a.id for a in cfg.agents}
    out = [
        f"agent {a.id!r} names unknown school {s!r}"
        for a in cfg.agents
        for s in a.schools
        if s not in schools
    ]
    out += [
        f"agreement {g.id!r} names unknown recipient {r!r}"
        for g in cfg.agreements
        for r in g.recipients
        if r not in subscribers
    ]
    out += [
        f"agreement {g.id!r} names unknown school {s.laestab!r}"
        for g in cfg.agreements
        for s in g.schools
        if s.laestab not in schools
    ]
    out += [
        f"subscriber {s.id!r} names unknown pull_agent {s.pull_agent!r}"
        for s in cfg.subscribers
        if s.pull_agent and s.pull_agent not in agents
    ]
    return out
