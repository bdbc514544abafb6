"""A clean stop (SIGTERM) of a `hub serve` process on SQLite checkpoints the WAL into the
database file and truncates it: what is left is one self-contained file, and nothing
accepted is lost."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
from pathlib import Path

import pytest

from hub.demo import SECRETS
from hub.simulate import sample_data as data
from hub.simulate.school_agent import SchoolAgent
from tests.e2e.hub_process import hub_process

pytestmark = pytest.mark.integration

AGENT, SCHOOL = "dovedale-mis", "8304012"
EVENTS = 5


async def test_sigterm_leaves_no_wal_and_every_accepted_message(tmp_path: Path) -> None:
    async with hub_process(tmp_path) as hub:
        agent = SchoolAgent(hub.client, "derbyshire", AGENT, SECRETS[AGENT])
        assert (await agent.register()).ok
        learners = [p for p in data.make_learners(30) if p.school.laestab == SCHOOL][:EVENTS]
        for p in learners:
            ack = await agent.send_event("LearnerPersonal", "Add", data.learner_personal(p))
            assert ack.ok, ack.raw
        wal = hub.database.with_name(hub.database.name + "-wal")
        assert wal.stat().st_size > 0  # the accepted messages are in the WAL now
        hub.process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(hub.process.wait, 60) == 0

    assert not wal.exists() or wal.stat().st_size == 0
    with contextlib.closing(sqlite3.connect(hub.database)) as conn:
        (received,) = conn.execute("SELECT count(*) FROM messages").fetchone()
    assert received == EVENTS
