"""The `alerts:` section of the hub's YAML: which conditions alert, for how long they must
hold first, how often they are evaluated, and where notifications go.

Every key is optional; the defaults are the thresholds of the Prometheus rules shipped in
deploy/monitoring/sifhub-alerts.yml (a test keeps the two in step). A section that names no
target still evaluates: alerts are listed by GET /admin/alerts and the console.

```yaml
alerts:
  interval_seconds: 30
  rules:
    outbox_backlog: {above: 10000, for_minutes: 10}
    parked_rows: {for_minutes: 1}
    dead_letters: {for_minutes: 1}
    not_consuming: {for_minutes: 15}
    review_due: {within_days: 30, for_minutes: 60}
    ingest_refusals: {per_minute: 12, window_minutes: 5, for_minutes: 10}
  webhooks: [{url: "https://ops.example.gov.uk/hooks/sifhub"}]
  email: {host: smtp.example.gov.uk, port: 587, starttls: true, username: sifhub,
          from: sifhub@example.gov.uk, to: [ops@example.gov.uk]}
```
The SMTP password comes from the environment (HUB_ALERTS_SMTP_PASSWORD), never the file.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hub.core.urls import is_secure_target

RuleName = Literal[
    "outbox_backlog",
    "parked_rows",
    "dead_letters",
    "not_consuming",
    "review_due",
    "ingest_refusals",
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Rule(Strict):
    enabled: bool = True
    for_minutes: float = Field(
        default=1.0, ge=0, description="how long the condition must hold before it fires"
    )


class BacklogRule(Rule):
    above: int = Field(default=10_000, ge=0, description="outbox rows waiting to be routed")
    for_minutes: float = Field(default=10.0, ge=0)


class NotConsumingRule(Rule):
    for_minutes: float = Field(default=15.0, ge=0)


class ReviewDueRule(Rule):
    within_days: int = Field(default=30, ge=0)
    for_minutes: float = Field(default=60.0, ge=0)


class RefusalRule(Rule):
    per_minute: float = Field(default=12.0, ge=0, description="refused agent messages a minute")
    window_minutes: float = Field(default=5.0, gt=0, description="the rate's averaging window")
    for_minutes: float = Field(default=10.0, ge=0)


class AlertRules(Strict):
    outbox_backlog: BacklogRule = Field(default_factory=BacklogRule)
    parked_rows: Rule = Field(default_factory=Rule)
    dead_letters: Rule = Field(default_factory=Rule)
    not_consuming: NotConsumingRule = Field(default_factory=NotConsumingRule)
    review_due: ReviewDueRule = Field(default_factory=ReviewDueRule)
    ingest_refusals: RefusalRule = Field(default_factory=RefusalRule)

    def hold_seconds(self, rule: str) -> float:
        found: Rule = getattr(self, rule)
        return found.for_minutes * 60.0

    def enabled(self) -> list[str]:
        return [name for name in type(self).model_fields if getattr(self, name).enabled]


class WebhookTarget(Strict):
    url: str = Field(description="https:// (http:// only on a loopback host)")
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    @field_validator("url")
    @classmethod
    def _https(cls, url: str) -> str:
        if not is_secure_target(url):
            raise ValueError("an alert webhook url must be https:// (http:// only on loopback)")
        return url


class EmailTarget(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    host: str
    port: int = Field(default=25, ge=1, le=65535)
    sender: str = Field(alias="from", min_length=3)
    to: list[str] = Field(min_length=1)
    starttls: bool = False
    username: str | None = Field(default=None, description="log in (password from env)")
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)


class AlertsConfig(Strict):
    interval_seconds: float = Field(default=30.0, gt=0, description="evaluate every ...")
    rules: AlertRules = Field(default_factory=AlertRules)
    webhooks: list[WebhookTarget] = Field(default_factory=list)
    email: EmailTarget | None = None
    max_attempts: int = Field(default=12, ge=1, description="tries per notification")
    retry_max_seconds: float = Field(default=600.0, gt=0, description="longest backoff")

    def targets(self) -> list[str]:
        """Stable names for the targets, stored on each delivery row (never the URL,
        which may hold a token)."""
        names = [f"webhook:{n}" for n in range(1, len(self.webhooks) + 1)]
        return names + (["email"] if self.email else [])
