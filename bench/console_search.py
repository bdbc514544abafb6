"""The console's message search at scale: how long `tx.journeys.search(...)` (and a
journey, and the dashboard's activity counts) take on a SQLite store of a million
messages. Measures only; nothing here asserts a figure.

    .venv/bin/python bench/console_search.py [--messages N] [--learners N] [--queries N]
                                             [--seed S]

A fresh SQLite file is migrated by the hub, then bulk-loaded outside the hub (sqlite3
executemany): N messages over 30 days from 120 school agents, one outbox row each (about
0.1% parked, 0.1% waiting, the rest routed) naming one of the learners, one disclosure per
routed row under one of three agreements (70% recorded with the UPN), and the learners
table. Then each kind of search runs `--queries` times through the hub's own code
(SqlStore.transaction() + SqlJourneys), one transaction each, as the console does, for
the first page of 51 rows; p50/p99/max are printed with the query plan of a UPN search.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import Summary, machine_facts

from hub.core.records import JourneyQuery
from hub.store import SqlStore, open_store

T0 = datetime(2026, 9, 1, tzinfo=UTC)
SPAN = timedelta(days=30)
CHUNK = 50_000
OBJECTS = ("LearnerPersonal", "LearnerAttendance", "LearnerSchoolEnrolment")
AGREEMENTS = ("dsa-cme", "dsa-virtual-school", "dsa-attendance")
SUBSCRIBERS = ("cme", "virtual-school", "attendance-team")
SCHOOLS = tuple(f"88{n:05d}" for n in range(120))
PAGE = 51
PAYLOAD = b"<SIF_Message>" + b"x" * 180 + b"</SIF_Message>"
OBJECT_XML = b"<LearnerAttendance>" + b"y" * 120 + b"</LearnerAttendance>"
PATHS = json.dumps(["LearnerAttendance/Date", "LearnerAttendance/AttendanceCode"])


def _t(value: datetime) -> str:
    # What hub.store.types.UtcDateTime stores on SQLite: naive UTC in SQLAlchemy's format.
    return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


def upn_of(n: int) -> str:
    return f"X{n:012d}"


def refid_of(n: int) -> str:
    return f"{n:016X}{'A' * 16}"


def rows(count: int, learners: int, rng: random.Random) -> Iterator[tuple[list[tuple], ...]]:
    """Chunks of (messages, outbox, disclosures) row tuples."""
    step = SPAN / count
    messages: list[tuple] = []
    outbox: list[tuple] = []
    disclosures: list[tuple] = []
    for n in range(count):
        mid, school, learner = f"{n:032x}", SCHOOLS[n % len(SCHOOLS)], rng.randrange(learners)
        obj, at = OBJECTS[n % len(OBJECTS)], _t(T0 + step * n)
        messages.append(
            (mid, f"agent-{school}", "county", f"M{n}", "Event", "2.0", obj, "Add", school, at)
        )
        roll = rng.random()
        parked, waiting = roll < 0.001, 0.001 <= roll < 0.002
        done = None if parked or waiting else at
        outbox.append(
            (f"o{n:031x}", mid, 0, "county", f"agent-{school}", obj, "Add", school,
             refid_of(learner), "[]", OBJECT_XML, 2 if parked else 0, at, done, at,
             at if parked else None, "publish failed" if parked else None)
        )  # fmt: skip
        if done:
            k = n % len(AGREEMENTS)
            upn = upn_of(learner) if rng.random() < 0.7 else None
            disclosures.append(
                (f"o{n:031x}", mid, f"c{n:031x}", SUBSCRIBERS[k], AGREEMENTS[k], 1, obj, "Add",
                 school, refid_of(learner), at, upn, "Art 6(1)(e)", "duty", PATHS)
            )  # fmt: skip
        if len(messages) == CHUNK:
            yield messages, outbox, disclosures
            messages, outbox, disclosures = [], [], []
    if messages:
        yield messages, outbox, disclosures


def load(path: str, count: int, learners: int, rng: random.Random) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA synchronous=OFF")  # a throw-away database
        m_sql = (
            "INSERT INTO messages (id, agent_id, zone, sif_msg_id, kind, version, object_name,"
            " action, school, received_at, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
        )
        o_sql = (
            "INSERT INTO outbox (id, message_id, seq, zone, source_agent, object_name, action,"
            " school, subject_refid, schools, object_xml, attempts, next_attempt_at, done_at,"
            " created_at, parked_at, last_error) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        )
        d_sql = (
            "INSERT INTO disclosures (outbox_id, message_id, copy_msg_id, subscriber,"
            " agreement_id, agreement_version, object_name, action, school, subject_refid,"
            " published_at, upn, lawful_basis, purpose, paths)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        )
        with conn:
            for messages, outbox, disclosures in rows(count, learners, rng):
                conn.executemany(m_sql, ((*m, PAYLOAD) for m in messages))
                conn.executemany(o_sql, outbox)
                conn.executemany(d_sql, disclosures)
            conn.executemany(
                "INSERT INTO learners (refid, upn, updated_at) VALUES (?, ?, ?)",
                ((refid_of(n), upn_of(n), _t(T0)) for n in range(learners)),
            )
        conn.execute("ANALYZE")
    finally:
        conn.close()


Search = Callable[[int], JourneyQuery]


def searches(learners: int, rng: random.Random) -> dict[str, Search]:
    def day(_: int) -> datetime:
        return T0 + timedelta(days=rng.randrange(29))

    return {
        "latest page (no criteria)": lambda _: JourneyQuery(limit=PAGE),
        "by UPN": lambda _: JourneyQuery(upn=upn_of(rng.randrange(learners)), limit=PAGE),
        "by learner RefId": lambda _: JourneyQuery(
            learner_refid=refid_of(rng.randrange(learners)), limit=PAGE
        ),
        "by school": lambda _: JourneyQuery(school=rng.choice(SCHOOLS), limit=PAGE),
        "by agent": lambda _: JourneyQuery(agent=f"agent-{rng.choice(SCHOOLS)}", limit=PAGE),
        "by object, one day": lambda _: JourneyQuery(
            object_name=rng.choice(OBJECTS),
            since=(d := day(0)),
            until=d + timedelta(days=1),
            limit=PAGE,
        ),
        "by agreement": lambda _: JourneyQuery(agreement_id=rng.choice(AGREEMENTS), limit=PAGE),
        "status parked": lambda _: JourneyQuery(status="parked", limit=PAGE),
        "status routed": lambda _: JourneyQuery(status="routed", limit=PAGE),
        "school + UPN": lambda _: JourneyQuery(
            school=rng.choice(SCHOOLS), upn=upn_of(rng.randrange(learners)), limit=PAGE
        ),
        "page 20 of a school (keyset)": lambda _: JourneyQuery(
            school=rng.choice(SCHOOLS),
            before=(T0 + SPAN - timedelta(hours=rng.randrange(1, 200)), "f" * 32),
            limit=PAGE,
        ),
    }


async def timed(queries: int, run: Callable[[int], Awaitable[object]]) -> Summary:
    for n in range(3):
        await run(n)  # warm the pool and the page cache a little
    seconds = []
    for n in range(queries):
        start = time.perf_counter()
        await run(n)
        seconds.append(time.perf_counter() - start)
    return Summary.of(seconds)


def report(name: str, s: Summary) -> None:
    print(
        f"  {name:32s} p50 {s.p50 * 1000:8.2f} ms  p99 {s.p99 * 1000:8.2f} ms  "
        f"max {s.max * 1000:8.2f} ms"
    )


async def measure(store: SqlStore, args: argparse.Namespace, rng: random.Random) -> None:
    print(f"search (first page of {PAGE}), {args.queries} random queries each:")
    for name, make in searches(args.learners, rng).items():

        async def search(n: int, make: Search = make) -> object:
            async with store.transaction() as tx:
                return await tx.journeys.search(make(n))

        report(name, await timed(args.queries, search))

    async def journey(_: int) -> object:
        async with store.transaction() as tx:
            return await tx.journeys.journey(f"{rng.randrange(args.messages):032x}")

    report("one journey", await timed(args.queries, journey))
    end = T0 + SPAN
    for label, since in (
        ("last hour", end - timedelta(hours=1)),
        ("last 24h", end - timedelta(days=1)),
    ):

        async def activity(_: int, since: datetime = since) -> object:
            async with store.transaction() as tx:
                return await tx.journeys.activity(since)

        report(f"dashboard activity, {label}", await timed(max(args.queries // 10, 3), activity))


async def explain(store: SqlStore) -> str:
    from sqlalchemy import select

    from hub.store.models import messages
    from hub.store.repos.journeys import _about

    statement = (
        select(messages.c.id)
        .where(messages.c.id.in_(_about(upn_of(1), [refid_of(1)])))
        .order_by(messages.c.received_at.desc(), messages.c.id.desc())
        .limit(PAGE)
    )
    async with store.engine.connect() as conn:
        sql = str(statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        plan = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")).all()
    return "\n".join(str(row[-1]) for row in plan)


def _size(directory: Path) -> float:
    return sum(f.stat().st_size for f in directory.iterdir()) / 2**20


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--learners", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--seed", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps(machine_facts()))
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'hub.db'}"
        store = await open_store(url)  # the hub's own migrations
        try:
            start = time.perf_counter()
            path = str(Path(tmp) / "hub.db")
            await asyncio.to_thread(load, path, args.messages, args.learners, rng)
            size = await asyncio.to_thread(_size, Path(tmp))
            print(
                f"== sqlite: {args.messages:,} messages (+ outbox rows, disclosures), "
                f"{args.learners:,} learners; load {time.perf_counter() - start:.0f} s, "
                f"{size:,.0f} MiB"
            )
            await measure(store, args, rng)
            print("plan of a UPN search:\n  " + (await explain(store)).replace("\n", "\n  "))
        finally:
            await store.close()


if __name__ == "__main__":
    asyncio.run(main())
