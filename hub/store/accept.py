"""What a group commit writes: the rows of every message its requests staged, a few
multi-row statements for the whole group, whatever its size.

The message insert decides which are new (ON CONFLICT DO NOTHING RETURNING, on both
backends): a message whose (agent, SIF_MsgId) is already there, committed by another
process, or earlier in this very group, adds nothing, and its request is answered as a
duplicate, exactly as when it was looked up first.
"""

from __future__ import annotations

from hub.core.records import MessageRecord, Staged
from hub.store.repos.messages import Key
from hub.store.tx import SqlTx


async def prepare(tx: SqlTx, keys: list[Key]) -> None:
    """One look-up for the whole group's duplicates (each stage asks tx.messages.exists)."""
    await tx.messages.prefetch(keys)


async def write(tx: SqlTx, group: list[Staged]) -> list[bool]:
    """Add every staged message that is new, with its outbox, audit and learner rows; for
    each, whether it was accepted."""
    first: dict[Key, MessageRecord] = {}
    for staged in group:  # a repeat inside the group is not even offered to the insert
        first.setdefault((staged.message.agent_id, staged.message.sif_msg_id), staged.message)
    offered = list(first.values())
    inserted = await tx.messages.add_new(offered)
    accepted = [s for s in group if s.message.id in inserted]
    await tx.outbox.add([item for s in accepted for item in s.outbox])
    await tx.audit.add_many([entry for s in accepted for entry in s.audit])
    learnt = [fact for s in accepted for fact in s.learnt]
    if learnt:
        learners, objects = await tx.learners.remember_many(learnt)
        if learners or objects:
            now = max(s.at for s in accepted)
            await tx.held.wake_identities(now, learners=learners, object_refids=objects)
    return [s.message.id in inserted for s in group]
