"""Process settings from the environment (prefix HUB_); passed in, never a module global."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.core.retry import RetryLadder

DEV_ADMIN_TOKEN = "dev-admin-token"  # noqa: S105 - refused outside development
DEV_SECRET_KEY = "dev-secret-key"  # noqa: S105 - refused outside development


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore")

    env: Literal["development", "production"] = "development"
    data_dir: Path = Path("var")
    database_url: str | None = Field(default=None, description="default: SQLite in data_dir")
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    amqp_management_url: str | None = Field(
        default=None,
        description="RabbitMQ management API; default http://<AMQP host>:15672 (https and "
        "15671 for amqps://), as the AMQP URL's user unless the URL names one",
    )
    amqp_provision_users: bool = Field(
        default=True, description="give each subscriber its own read-only broker user"
    )
    config: Path | None = None
    admin_token: str = DEV_ADMIN_TOKEN
    max_body_bytes: int = 10 * 1024 * 1024
    dispatch_batch: int = 200
    dispatch_idle_seconds: float = 0.05
    publish_timeout_seconds: float = 10.0
    host: str = "127.0.0.1"
    port: int = 8080
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    log_level: str = "INFO"
    # Copies awaiting a learner's identity are dropped, audited, after this many days.
    identity_hold_days: int = Field(default=14, ge=1)
    # Retention (storage limitation): payloads no agreement covers, rejection rows, and the
    # accountability records (disclosures, audit); how often the purge runs.
    retention_uncovered_days: int = Field(default=30, ge=1)
    retention_rejected_days: int = Field(default=30, ge=1)
    retention_accountability_days: int = Field(default=6 * 365, ge=365)
    purge_interval_seconds: float = Field(default=3600.0, gt=0)
    # An outbox row failing this often (for a reason of its own) is parked for ops.
    outbox_max_attempts: int = Field(default=10, ge=1)
    # Backpressure: above either bound agents' events are refused 11/1 (send again later).
    outbox_max_backlog: int = Field(default=100_000, ge=1)
    outbox_max_age_seconds: float = Field(default=3600.0, gt=0)
    # Seals secrets the hub must use in clear (webhook signing secrets) in the database.
    # Changing it makes issued secrets unreadable: issue them again.
    secret_key: str = DEV_SECRET_KEY
    # Webhook push: a failed attempt n waits retry_delays[n-1] (the last repeating) in a
    # fixed-delay retry queue; after max_attempts attempts the copy is dead-lettered.
    webhook_retry_delays_seconds: list[float] = Field(
        default=[10.0, 60.0, 600.0, 3600.0], min_length=1
    )
    webhook_max_attempts: int = Field(default=8, ge=1)

    @model_validator(mode="after")
    def _no_unsafe_defaults(self) -> Self:
        if self.env == "production" and self.admin_token == DEV_ADMIN_TOKEN:
            raise ValueError("HUB_ADMIN_TOKEN must be set in production")
        if self.env == "production" and self.secret_key == DEV_SECRET_KEY:
            raise ValueError("HUB_SECRET_KEY must be set in production")
        return self

    @field_validator("webhook_retry_delays_seconds")
    @classmethod
    def _positive(cls, delays: list[float]) -> list[float]:
        if any(d <= 0 for d in delays):
            raise ValueError("HUB_WEBHOOK_RETRY_DELAYS_SECONDS must all be positive")
        return delays

    def webhook_ladder(self) -> RetryLadder:
        delays = tuple(max(1, round(d * 1000)) for d in self.webhook_retry_delays_seconds)
        return RetryLadder(delays_ms=delays, max_attempts=self.webhook_max_attempts)

    @field_validator("amqp_management_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url and not url.startswith(("http://", "https://")):
            raise ValueError("HUB_AMQP_MANAGEMENT_URL must be an http:// or https:// URL")
        return url

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'hub.db').resolve()}"
