"""Ingest alone, in one process: what each accepted SIF_Event costs the database. Measures only.

    .venv/bin/python bench/ingest.py [--db sqlite|postgres] [--events N] [--concurrency C]

The real ingest (`hub.pipeline.ingest.handle`: parse, validate, check, store) over a real
SqlStore on a fresh database, fed the attendance marks of bench/e2e.py by C concurrent
agents' requests (no HTTP, no broker, no dispatch). It prints events/s, process CPU per
event, and per event the SQL statements (an executemany counts once), transactions
committed and groups (when the store has group commit). Works on any checkout that has
`handle` (point PYTHONPATH at another checkout to measure it).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import COUNTY, DEFAULT_PG_URL, fresh_database
from e2e import events
from sqlalchemy import event

from hub.configfile import load_config
from hub.core.schools import SchoolIndex
from hub.pipeline.ingest import Incoming, IngestContext, handle
from hub.sif.schemas import load_schemas
from hub.simulate import sif_messages
from hub.simulate.school_agent import read_ack
from hub.store import open_store


class _Agent:
    """What bench/e2e.py's events() needs of an agent: its id."""

    def __init__(self, agent_id: str) -> None:
        self.agent_id = agent_id


class Counts:
    def __init__(self) -> None:
        self.statements = 0
        self.commits = 0

    def watch(self, engine: Any) -> None:
        def statement(*_: Any) -> None:
            self.statements += 1

        def commit(*_: Any) -> None:
            self.commits += 1

        event.listen(engine.sync_engine, "before_cursor_execute", statement)
        event.listen(engine.sync_engine, "commit", commit)


async def run(args: argparse.Namespace) -> None:
    config = load_config(COUNTY)
    schemas = load_schemas()
    with tempfile.TemporaryDirectory() as tmp:
        async with fresh_database(args.db, Path(tmp), args.pg_url) as url:
            store = await open_store(url)
            try:
                await _measure(args, config, schemas, store)
            finally:
                await store.close()


async def _measure(args: argparse.Namespace, config: Any, schemas: Any, store: Any) -> None:
    hub = IngestContext(store, config, SchoolIndex.of(config), schemas, pull=None)  # type: ignore[arg-type]
    zone = config.zones[0]
    by_school = {str(s): a for a in config.agents for s in a.schools}
    for agent in {a.id: a for a in by_school.values()}.values():
        reply = await handle(hub, Incoming(agent, zone, sif_messages.register(agent.id, "Push")))
        assert read_ack(200, reply).ok
    agents = {school: _Agent(agent.id) for school, agent in by_school.items()}
    by_id = {a.id: a for a in config.agents}
    bodies = list(itertools.islice(events(1, agents), args.events))  # type: ignore[arg-type]
    counts = Counts()
    counts.watch(store.engine)
    queue = iter(bodies)
    refused = 0

    async def poster() -> None:
        nonlocal refused
        for agent, _, body in queue:
            incoming = Incoming(by_id[agent.agent_id], zone, body)
            if not read_ack(200, await handle(hub, incoming)).ok:
                refused += 1

    groups_before = getattr(store, "group_commits", None)
    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(poster() for _ in range(args.concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    n = len(bodies)
    print(f"db={args.db} events={n} concurrency={args.concurrency} refused={refused}")
    print(f"  events/s          {n / wall:8.1f}")
    print(f"  CPU ms/event      {1000 * cpu / n:8.2f}")
    print(f"  statements/event  {counts.statements / n:8.2f}")
    print(f"  commits/event     {counts.commits / n:8.3f}")
    if groups_before is not None:
        groups = store.group_commits - groups_before
        print(f"  events/group      {n / max(groups, 1):8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
