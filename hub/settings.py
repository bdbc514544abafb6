"""Process settings from the environment (prefix HUB_); passed in, never a module global."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from hub.core.retry import RetryLadder

# The bootstrap admin token a development hub starts with: refused in production and on
# any address but loopback.
DEV_ADMIN_TOKEN = "dev-admin-token-for-loopback-only"  # noqa: S105
# Shortest HUB_ADMIN_TOKEN accepted (e.g. `openssl rand -base64 32` gives 44 characters).
MIN_ADMIN_TOKEN_CHARS = 32
DEV_SECRET_KEY = "dev-secret-key"  # noqa: S105 - refused in production


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
    # CSV uploads (POST /ingest/{zone}/csv/{kind}): the largest file (spooled to disk, never
    # held in memory), rows stored per database transaction, and the column mapping
    # (default: deploy/examples/csv-mapping-v1.yaml).
    csv_max_body_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)
    csv_chunk_rows: int = Field(default=500, ge=1, le=10_000)
    csv_mapping_file: Path | None = None
    # A body of at least offload_body_bytes is parsed and validated in a worker thread, at
    # most offload_threads at once (others wait), so the event loop keeps answering.
    offload_body_bytes: int = Field(default=256 * 1024, ge=0)
    offload_threads: int = Field(default=2, ge=1)
    # Most packets one SIF_Response may have; a higher SIF_PacketNumber is refused 8/12.
    # At most 2**31 - 1: packet numbers are stored in a 32-bit column.
    max_packets: int = Field(default=10_000, ge=1, le=2**31 - 1)
    # Failed agent authentication: each agent id and each client address (IPv6: its /64)
    # may fail this many times at once, then once every interval; beyond that 429 with
    # Retry-After, before argon2 runs. At most this many argon2 checks (64 MiB each) at once
    # (default half the CPUs, at least 1: a flood never takes every core).
    auth_failure_burst: int = Field(default=10, ge=1)
    auth_failure_interval_seconds: float = Field(default=6.0, gt=0)
    auth_max_concurrent: int = Field(
        default_factory=lambda: max(1, (os.cpu_count() or 2) // 2), ge=1
    )
    auth_throttle_max_keys: int = Field(default=100_000, ge=100)
    dispatch_batch: int = 200
    # The dispatcher is woken at once by new work in this process; it also polls the outbox
    # (other hub processes' work, retries coming due), backing off from the first value to
    # the second while there is nothing to route.
    dispatch_idle_seconds: float = Field(default=0.05, gt=0)
    dispatch_idle_max_seconds: float = Field(default=1.0, gt=0)
    # A claimed outbox row is another dispatcher's to take if its claimer has not settled it
    # within this long (a worker killed mid-batch): longer than a batch takes to publish.
    dispatch_lease_seconds: float = Field(default=60.0, gt=0)
    publish_timeout_seconds: float = 10.0
    # Idle and slow clients: a connection must complete its request headers (at most
    # http_max_header_bytes) within http_header_timeout_seconds of opening or of its first
    # byte after a response, and the body within http_body_timeout_seconds (else 408); an
    # idle kept-alive connection is closed after http_keep_alive_seconds; beyond
    # http_limit_concurrency open connections uvicorn answers 503; http_backlog is the
    # listen queue.
    http_header_timeout_seconds: float = Field(default=10.0, gt=0)
    http_max_header_bytes: int = Field(default=64 * 1024, ge=4096)
    http_body_timeout_seconds: float = Field(default=120.0, gt=0)
    http_keep_alive_seconds: int = Field(default=5, ge=1)
    http_limit_concurrency: int = Field(default=1000, ge=10)
    http_backlog: int = Field(default=2048, ge=1)
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
    # Readiness fails below this much free disk where the SQLite file lives (or data_dir).
    min_free_disk_mb: int = Field(default=512, ge=0)
    # /metrics: open when unset (counts only, no personal data; keep it off the internet),
    # else a bearer token Prometheus sends (authorization.credentials in its scrape config).
    metrics_token: str | None = None
    # Seals secrets the hub must use in clear (webhook signing secrets) in the database.
    # Changing it makes issued secrets unreadable: issue them again.
    secret_key: str = DEV_SECRET_KEY
    # The ops console's session lifetime (signed cookie; the user row is re-read every call).
    console_session_minutes: int = Field(default=480, ge=1, le=7 * 24 * 60)
    # Webhook push: a failed attempt n waits retry_delays[n-1] (the last repeating) in a
    # fixed-delay retry queue; after max_attempts attempts the copy is dead-lettered.
    webhook_retry_delays_seconds: list[float] = Field(
        default=[10.0, 60.0, 600.0, 3600.0], min_length=1
    )
    webhook_max_attempts: int = Field(default=8, ge=1)
    # The SMTP login password for alert e-mails (the `alerts.email` section of the YAML).
    alerts_smtp_password: str | None = Field(default=None, repr=False)

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


class UnsafeToServe(Exception):
    """The settings must not serve: one line, for the operator, says why."""


def check_serving(settings: Settings) -> None:
    """Refuse to serve with an admin token anyone could guess (raises UnsafeToServe)."""
    token = settings.admin_token
    if settings.env == "production" and token == DEV_ADMIN_TOKEN:
        raise UnsafeToServe(
            "HUB_ADMIN_TOKEN must be set in production "
            f"(at least {MIN_ADMIN_TOKEN_CHARS} random characters)"
        )
    if len(token.strip()) < MIN_ADMIN_TOKEN_CHARS:
        raise UnsafeToServe(
            f"HUB_ADMIN_TOKEN is empty or shorter than {MIN_ADMIN_TOKEN_CHARS} characters"
        )
    if token == DEV_ADMIN_TOKEN and not _loopback(settings.host):
        raise UnsafeToServe(
            f"the development admin token is refused on {settings.host!r}, which is not a "
            "loopback address: set HUB_ADMIN_TOKEN"
        )


def check_secret_key(settings: Settings, *, webhooks: bool) -> None:
    """A production hub that signs webhooks must not seal their secrets with the
    development key (raises UnsafeToServe)."""
    if webhooks and settings.env == "production" and settings.secret_key == DEV_SECRET_KEY:
        raise UnsafeToServe("HUB_SECRET_KEY must be set in production (it seals webhook secrets)")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False
