"""Subject access at scale: how long `tx.disclosures.for_subject(upn=...)` takes on a large
disclosure log. Measures only; nothing here asserts a figure.

    .venv/bin/python bench/disclosures.py [--rows N] [--learners N] [--queries N]
                                          [--database sqlite|postgresql|both] [--seed S]

For each backend: a fresh database (a SQLite file in a temporary directory, or a new
PostgreSQL database dropped afterwards) migrated by the hub, then bulk-loaded outside the
hub (sqlite3 executemany / PostgreSQL COPY) with N disclosure rows spread over the
learners, and the learners table. The shape follows what the subject access query has to
cope with: ~30% of rows were recorded before the learner's UPN was known (subject_refid
only), and ~10% of learners have a second RefId (a previous school). Then `--queries`
random learners are looked up through the hub's own code (SqlStore.transaction() +
SqlDisclosures.for_subject), one transaction each, as the admin API would; p50/p99/max are
printed, with the query plan of one lookup.
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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DEFAULT_PG_URL, Summary, fresh_database, machine_facts, postgres_version

from hub.store import SqlStore, open_store
from hub.store.models import learners as learner_table
from hub.store.repos.disclosures import subject_access_query

T0 = datetime(2024, 9, 1, tzinfo=UTC)
CHUNK = 100_000
SUBSCRIBERS = ("cme", "virtual-school", "attendance-team", "send", "admissions")
OBJECTS = ("LearnerPersonal", "LearnerAttendance", "LearnerSchoolEnrolment")
PATHS = json.dumps(["LearnerPersonal/UPN", "LearnerPersonal/PersonalInformation/Name"])
NO_UPN_SHARE = 0.3  # rows recorded before the UPN was known
SECOND_REFID_SHARE = 0.1  # learners who changed school
COLUMNS = (
    "outbox_id",
    "message_id",
    "copy_msg_id",
    "subscriber",
    "agreement_id",
    "agreement_version",
    "object_name",
    "action",
    "school",
    "subject_refid",
    "published_at",
    "upn",
    "lawful_basis",
    "purpose",
    "paths",
)


@dataclass(frozen=True)
class Learner:
    upn: str
    refids: tuple[str, ...]
    school: str


def make_learners(count: int, rng: random.Random) -> list[Learner]:
    result = []
    for n in range(count):
        refids = [f"{n:016X}{'A' * 16}"]
        if rng.random() < SECOND_REFID_SHARE:
            refids.append(f"{n:016X}{'B' * 16}")
        result.append(Learner(f"X{n:012d}", tuple(refids), f"88{n % 400:05d}"))
    return result


def disclosure_rows(
    rows: int, people: list[Learner], rng: random.Random
) -> Iterator[list[tuple[object, ...]]]:
    """Chunks of row tuples in COLUMNS order; published_at one second apart."""
    chunk: list[tuple[object, ...]] = []
    for n in range(rows):
        person = people[rng.randrange(len(people))]
        chunk.append(
            (
                f"{n:032x}",
                f"{n // 3:032x}",
                f"{n:032X}",
                SUBSCRIBERS[n % len(SUBSCRIBERS)],
                "dsa-county",
                1 + n % 3,
                OBJECTS[n % len(OBJECTS)],
                "Change",
                person.school,
                rng.choice(person.refids),
                T0 + timedelta(seconds=n),
                None if rng.random() < NO_UPN_SHARE else person.upn,
                "UK GDPR Art 6(1)(e)",
                "statutory duties",
                PATHS,
            )
        )
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def learner_rows(people: list[Learner]) -> Iterator[tuple[str, str, str, datetime]]:
    for person in people:
        for refid in person.refids:
            yield (refid, person.school, person.upn, T0)


# -- loading --------------------------------------------------------------------------


def _sqlite_time(value: object) -> object:
    # What hub.store.types.UtcDateTime stores on SQLite: naive UTC in SQLAlchemy's format.
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def load_sqlite(path: str, rows: int, people: list[Learner], rng: random.Random) -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA synchronous=OFF")  # a throw-away database
        placeholders = ", ".join("?" for _ in COLUMNS)
        insert = f"INSERT INTO disclosures ({', '.join(COLUMNS)}) VALUES ({placeholders})"
        with conn:
            for chunk in disclosure_rows(rows, people, rng):
                conn.executemany(insert, ([_sqlite_time(v) for v in row] for row in chunk))
            conn.executemany(
                "INSERT INTO learners (refid, school, upn, updated_at) VALUES (?, ?, ?, ?)",
                ([_sqlite_time(v) for v in row] for row in learner_rows(people)),
            )
        conn.execute("ANALYZE")
    finally:
        conn.close()


async def load_postgres(url: str, rows: int, people: list[Learner], rng: random.Random) -> None:
    conn = await asyncpg.connect(_plain(url))
    try:
        for chunk in disclosure_rows(rows, people, rng):
            await conn.copy_records_to_table("disclosures", records=chunk, columns=COLUMNS)
        await conn.copy_records_to_table(
            "learners",
            records=list(learner_rows(people)),
            columns=("refid", "school", "upn", "updated_at"),
        )
        await conn.execute("VACUUM ANALYZE disclosures")
        await conn.execute("VACUUM ANALYZE learners")
    finally:
        await conn.close()


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# -- measuring ------------------------------------------------------------------------


async def time_lookups(store: SqlStore, sample: list[Learner]) -> tuple[Summary, int, int]:
    for person in sample[:5]:  # warm the pool and the caches a little
        async with store.transaction() as tx:
            await tx.disclosures.for_subject(upn=person.upn)
    seconds, found, without_upn = [], 0, 0
    for person in sample:
        start = time.perf_counter()
        async with store.transaction() as tx:
            rows = await tx.disclosures.for_subject(upn=person.upn)
        seconds.append(time.perf_counter() - start)
        found += len(rows)
        without_upn += sum(1 for row in rows if row.upn is None)
    return Summary.of(seconds), found, without_upn


async def time_empty_transactions(store: SqlStore, count: int) -> Summary:
    """The fixed cost around each lookup: BEGIN, COMMIT, pool checkout."""
    seconds = []
    for _ in range(count):
        start = time.perf_counter()
        async with store.transaction():
            pass
        seconds.append(time.perf_counter() - start)
    return Summary.of(seconds)


async def database_times(store: SqlStore, sample: list[Learner]) -> Summary:
    """The database's own share, without the hub's async stack and its round trips:
    PostgreSQL's server-side execution time (EXPLAIN ANALYZE) of the main query;
    SQLite's time for both statements through the plain sqlite3 module."""
    if store.engine.dialect.name == "sqlite":
        path = store.engine.url.database or ""
        return await asyncio.to_thread(_sqlite_times, path, sample)
    seconds = []
    async with store.engine.connect() as conn:
        for person in sample:
            sql = await _main_sql(conn, person)
            plan = (await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")).scalar()
            plan = json.loads(plan) if isinstance(plan, str) else plan
            seconds.append((plan[0]["Planning Time"] + plan[0]["Execution Time"]) / 1000)
    return Summary.of(seconds)


def _sqlite_times(path: str, sample: list[Learner]) -> Summary:
    conn = sqlite3.connect(path)
    seconds = []
    try:
        for person in sample:
            start = time.perf_counter()
            refids = [
                row[0]
                for row in conn.execute("SELECT refid FROM learners WHERE upn = ?", (person.upn,))
            ]
            marks = ", ".join("?" for _ in refids)
            where = f"upn = ? OR subject_refid IN ({marks})" if refids else "upn = ?"
            conn.execute(
                f"SELECT * FROM disclosures WHERE {where} ORDER BY published_at, id LIMIT 10000",
                (person.upn, *refids),
            ).fetchall()
            seconds.append(time.perf_counter() - start)
    finally:
        conn.close()
    return Summary.of(seconds)


async def _main_sql(conn: AsyncConnection, person: Learner) -> str:
    query = select(learner_table.c.refid).where(learner_table.c.upn == person.upn)
    refids = sorted((await conn.execute(query)).scalars())
    main = subject_access_query(upn=person.upn, refids=refids, limit=10_000)
    return str(main.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))


async def explain(store: SqlStore, person: Learner) -> str:
    """The plan of the main query of one lookup (EXPLAIN ANALYZE on PostgreSQL)."""
    async with store.engine.connect() as conn:
        sql = await _main_sql(conn, person)
        if conn.dialect.name == "sqlite":
            plan = (await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")).all()
            return "\n".join(str(row[-1]) for row in plan)
        plan = (await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")).all()
        return "\n".join(str(row[0]) for row in plan)


async def run_backend(kind: str, args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    people = make_learners(args.learners, rng)
    refid_count = sum(len(p.refids) for p in people)
    print(f"\n== {kind}: {args.rows:,} disclosures, {len(people):,} learners", end=" ")
    print(f"({refid_count:,} refids)")
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        async with fresh_database(kind, Path(tmp), args.pg_url) as url:
            store = await open_store(url)  # the hub's own migrations
            try:
                start = time.perf_counter()
                if kind == "sqlite":
                    path = make_url(url).database or ""
                    await asyncio.to_thread(load_sqlite, path, args.rows, people, rng)
                    size = _sqlite_size(path)
                else:
                    await load_postgres(url, args.rows, people, rng)
                    size = await _pg_size(url)
                print(f"load: {time.perf_counter() - start:.1f} s (incl. ANALYZE), db {size}")
                sample = [people[rng.randrange(len(people))] for _ in range(args.queries)]
                summary, found, without_upn = await time_lookups(store, sample)
                print(
                    f"disclosures.for_subject(upn=...) over {summary.count} random learners, "
                    f"one transaction each: p50 {summary.p50 * 1000:.2f} ms, "
                    f"p99 {summary.p99 * 1000:.2f} ms, max {summary.max * 1000:.2f} ms"
                )
                empty = await time_empty_transactions(store, args.queries)
                print(
                    f"  baseline, an empty transaction: p50 {empty.p50 * 1000:.2f} ms, "
                    f"p99 {empty.p99 * 1000:.2f} ms"
                )
                own = await database_times(store, sample)
                what = "sqlite3 module, both statements" if kind == "sqlite" else "server-side"
                print(
                    f"  database time only ({what}), same learners: p50 {own.p50 * 1000:.2f} ms, "
                    f"p99 {own.p99 * 1000:.2f} ms"
                )
                print(
                    f"rows returned: {found / max(summary.count, 1):.1f} per learner on "
                    f"average, {without_upn / max(found, 1):.0%} of them found by RefId only"
                )
                moved = next((p for p in people if len(p.refids) > 1), people[0])
                print(f"plan of one lookup's main query ({len(moved.refids)} refids):")
                print("  " + (await explain(store, moved)).replace("\n", "\n  "))
            finally:
                await store.close()


def _sqlite_size(path: str) -> str:
    files = [Path(path), Path(f"{path}-wal")]
    total = sum(f.stat().st_size for f in files if f.exists())
    return f"{total / 2**20:,.0f} MiB (with WAL)"


async def _pg_size(url: str) -> str:
    conn = await asyncpg.connect(_plain(url))
    try:
        size = await conn.fetchval("SELECT pg_size_pretty(pg_database_size(current_database()))")
        return str(size)
    finally:
        await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--learners", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--database", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    facts = machine_facts()
    facts["postgresql"] = await postgres_version(args.pg_url)
    for key, value in facts.items():
        print(f"{key}: {value}")
    kinds = ("sqlite", "postgresql") if args.database == "both" else (args.database,)
    for kind in kinds:
        await run_backend(kind, args)


if __name__ == "__main__":
    asyncio.run(main())
