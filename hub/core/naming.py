"""Names of every RabbitMQ exchange, queue and subscriber user, and the AMQP headers each copy
carries."""

from __future__ import annotations

PREFIX = "sifhub"
DEAD_LETTER_EXCHANGE = f"{PREFIX}.dlx"


def subscriber_queue(subscriber_id: str, prefix: str = PREFIX) -> str:
    """`prefix` lets two hubs (or a demo, or a test run) share one broker without mixing."""
    return f"{prefix}.sub.{subscriber_id}"


def dead_letter_queue(subscriber_id: str, prefix: str = PREFIX) -> str:
    return f"{subscriber_queue(subscriber_id, prefix)}.dlq"


def retry_queue(subscriber_id: str, delay_ms: int, prefix: str = PREFIX) -> str:
    """A fixed-delay retry queue; the delay is in the name, so a changed ladder declares
    new queues instead of clashing with the old ones' arguments."""
    return f"{subscriber_queue(subscriber_id, prefix)}.retry.{delay_ms}ms"


def subscriber_user(subscriber_id: str, prefix: str = PREFIX) -> str:
    """The LA service's own RabbitMQ user, named like the one queue it may read."""
    return subscriber_queue(subscriber_id, prefix)


def dead_letter_exchange(prefix: str = PREFIX) -> str:
    """One direct DLX per prefix, so hubs sharing a broker never mix dead letters."""
    return f"{prefix}.dlx"


# AMQP headers on every copy delivered to a subscriber (documented in README).
H_MESSAGE_ID = "hub-message-id"
H_ZONE = "hub-zone"
H_OBJECT = "hub-object"
H_ACTION = "hub-action"
H_SOURCE = "hub-source-agent"
H_SCHOOL = "hub-school"
H_AGREEMENT = "hub-agreement-id"
H_AGREEMENT_VERSION = "hub-agreement-version"
H_SUBSCRIBER = "hub-subscriber"
# On a batch of copies (hub.pipeline.batches): how many copies it holds.
H_BATCH_COUNT = "hub-batch-count"
COPY_BATCH_TYPE = "SIF_CopyBatch"
# Carried by a pushed copy through the retry queues (see hub.pipeline.deliver).
H_ATTEMPTS = "hub-attempts"
H_DEFERRALS = "hub-deferrals"
