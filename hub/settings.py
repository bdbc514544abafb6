"""Process settings from the environment (prefix HUB_); passed in, never a module global."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_ADMIN_TOKEN = "dev-admin-token"  # noqa: S105 - refused outside development


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
    # PostgreSQL connection pool (hub.store.engine.PoolSettings): kept open for the hub's
    # concurrency (requests in flight plus ~5 background tasks), overflow for bursts.
    db_pool_size: int = Field(default=20, ge=1)
    db_max_overflow: int = Field(default=10, ge=0)
    db_pool_recycle_seconds: float = Field(default=1800.0, gt=0)
    db_pool_pre_ping: bool = True
    config: Path | None = None
    admin_token: str = DEV_ADMIN_TOKEN
    max_body_bytes: int = 10 * 1024 * 1024
    dispatch_batch: int = 200
    # The dispatcher is woken at once by new work in this process; it also polls the outbox
    # (other hub processes' work, retries coming due), backing off from the first value to
    # the second while there is nothing to route.
    dispatch_idle_seconds: float = Field(default=0.05, gt=0)
    dispatch_idle_max_seconds: float = Field(default=1.0, gt=0)
    publish_timeout_seconds: float = 10.0
    # `hub serve`'s event loop and HTTP parser (uvicorn): uvloop and httptools measured
    # cheaper per request than asyncio's loop and h11 (README, Performance).
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    http_parser: Literal["httptools", "h11"] = "httptools"
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

    @model_validator(mode="after")
    def _no_unsafe_defaults(self) -> Self:
        if self.env == "production" and self.admin_token == DEV_ADMIN_TOKEN:
            raise ValueError("HUB_ADMIN_TOKEN must be set in production")
        return self

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
