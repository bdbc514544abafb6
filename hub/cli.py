"""The `hub` command: serve, worker, check-config, hash-secret, demo, disclosures, purge,
admin, upload."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from hub import logs
from hub.configfile import check_config, load_config
from hub.core.admins import Role
from hub.core.records import Actor
from hub.settings import Settings, UnsafeToServe, check_serving

if TYPE_CHECKING:
    from hub.core.ports import Tx


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    handlers = {
        "serve": _serve,
        "worker": _worker,
        "check-config": _check,
        "hash-secret": _hash,
        "demo": _demo,
        "disclosures": _disclosures,
        "purge": _purge,
        "admin": _admin,
        "upload": _upload,
    }
    handler = handlers[args.command]
    return handler(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hub", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the hub (HTTP API, dispatcher)")
    serve.add_argument("--config", type=Path, required=True, help="YAML configuration file")
    serve.add_argument("--host", help="listen address (default HUB_HOST or 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default HUB_PORT or 8080)")
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="HTTP processes sharing the port (default 1: this process)",
    )
    serve.add_argument(
        "--no-dispatch",
        action="store_true",
        help="ingest and admin only: `hub worker` processes dispatch, release, deliver, purge",
    )
    worker = sub.add_parser(
        "worker",
        help="dispatch, release held copies, deliver webhooks, purge; no HTTP "
        "(beside `hub serve --no-dispatch`; several may share one database)",
    )
    worker.add_argument("--config", type=Path, required=True, help="YAML configuration file")
    check = sub.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file", type=Path)
    sub.add_parser("hash-secret", help="hash an agent secret for the configuration file")
    demo = sub.add_parser(
        "demo", help="run the hub with a simulated school and show what each LA service receives"
    )
    demo.add_argument("--config", type=Path, default=Path("deploy/examples/county.yaml"))
    sar = sub.add_parser(
        "disclosures",
        help="subject access report: everything disclosed "
        "about one child (database from HUB_DATABASE_URL)",
    )
    who = sar.add_mutually_exclusive_group(required=True)
    who.add_argument("--upn")
    who.add_argument("--refid")
    sar.add_argument("--format", choices=["json", "csv"], default="json")
    purge = sub.add_parser(
        "purge",
        help="remove what retention no longer keeps, and print the counts "
        "(database from HUB_DATABASE_URL; retention from HUB_RETENTION_*)",
    )
    purge.add_argument("--dry-run", action="store_true", help="count only; change nothing")
    purge.add_argument(
        "--vacuum",
        action="store_true",
        help="then rewrite the SQLite file (VACUUM) or VACUUM ANALYZE on PostgreSQL",
    )
    _admin_parser(sub)
    _upload_parser(sub)
    return parser


def _upload_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = sub.add_parser(
        "upload", help="send a school's CSV file to a hub as its agent and print the report"
    )
    up.add_argument("file", type=Path)
    up.add_argument("--kind", required=True, help="attendance, exclusions or pupils")
    up.add_argument("--agent", required=True, help="the school's agent id (HTTP Basic user)")
    up.add_argument("--zone", help="default HUB_ZONE")
    up.add_argument("--url", help="the hub (default HUB_URL or http://127.0.0.1:8080)")
    up.add_argument("--secret", help="the agent's secret (default HUB_AGENT_SECRET)")


def _admin_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    admin = sub.add_parser(
        "admin",
        help="named admin users, each with its own API token (database from HUB_DATABASE_URL)",
    )
    users = admin.add_subparsers(dest="admin_command", required=True)
    add = users.add_parser("add-user", help="add a user and print its token, once")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    for name, text in (
        ("rotate", "give a user a new token (printed once); the old one stops working"),
        ("revoke", "revoke a user's token for good (the name is not reused)"),
    ):
        users.add_parser(name, help=text).add_argument("name")
    users.add_parser("list", help="every user: name, role, when added, rotated, revoked")
    for parser in users.choices.values():
        parser.add_argument("--note", help="free text for the audit row")


def _serve(args: argparse.Namespace) -> int:
    import functools

    from hub.composition import Role
    from hub.server import run, serve, serve_processes

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v}
    settings = _settings(**overrides)
    if settings is None:
        return 2
    if args.workers < 1:
        print("hub: --workers must be at least 1", file=sys.stderr)
        return 2
    role = Role.HTTP if args.no_dispatch else Role.ALL
    if args.workers == 1:
        return run(settings, args.config, functools.partial(serve, role=role))
    logs.configure(settings.log_level)
    try:
        check_serving(settings)  # refused once here, not by every process
    except UnsafeToServe as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return 2
    return serve_processes(settings, args.config, processes=args.workers, role=role)


def _worker(args: argparse.Namespace) -> int:
    from hub.server import run, work

    settings = _settings()
    return 2 if settings is None else run(settings, args.config, work)


def _settings(**overrides: object) -> Settings | None:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            print(f"hub: setting {where}: {error['msg']}", file=sys.stderr)
        return None


def _check(args: argparse.Namespace) -> int:
    problems = check_config(args.file)
    if not problems:  # the model is sound: now every path against the hub's schemas
        from hub.pipeline.agreements import schema_problems
        from hub.pipeline.export import column_problems
        from hub.sif.schemas import load_schemas

        paths_of = load_schemas().element_paths
        config = load_config(args.file)
        problems = [
            f"{args.file}: agreement {a.id}: {p}"
            for a in config.agreements
            for p in schema_problems(a, paths_of)
        ]
        problems += [
            f"{args.file}: {p}"
            for s, target in config.file_subscribers()
            for p in column_problems(s.id, target, paths_of)
        ]
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"{args.file}: OK")
    return 1 if problems else 0


def _hash(_: argparse.Namespace) -> int:
    from hub.api.auth import hash_secret

    secret = getpass.getpass("Agent secret: ") if sys.stdin.isatty() else sys.stdin.readline()
    print(hash_secret(secret.rstrip("\n")))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from hub.demo import run_demo

    logs.configure("WARNING")
    return asyncio.run(run_demo(args.config))


def _disclosures(args: argparse.Namespace) -> int:
    import csv
    import json

    from hub.sar import SAR_FIELDS, sar_rows
    from hub.store.store import open_store

    async def report() -> list[dict[str, object]]:
        store = await open_store(Settings().resolved_database_url())
        try:
            return await sar_rows(store, upn=args.upn, refid=args.refid)
        finally:
            await store.close()

    rows = asyncio.run(report())
    if args.format == "json":
        print(
            json.dumps(
                {"upn": args.upn, "refid": args.refid, "count": len(rows), "disclosures": rows},
                default=str,
                indent=2,
            )
        )
    else:
        writer = csv.DictWriter(sys.stdout, fieldnames=SAR_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return 0


def _purge(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from adapters.file_export import CsvFiles
    from hub.composition import retention_policy
    from hub.pipeline.retention import purge
    from hub.store.store import open_store

    settings = Settings()

    async def run() -> int:
        store = await open_store(settings.resolved_database_url())
        try:
            counts = await purge(
                store,
                retention_policy(settings),
                datetime.now(UTC),
                dry_run=args.dry_run,
                actor="cli",
                files=CsvFiles(),
            )
            if counts is None:
                print("another hub is purging now; nothing done", file=sys.stderr)
                return 1
            verb = "would remove" if args.dry_run else "removed"
            for name, count in asdict(counts).items():
                print(f"{verb} {count} {name}")
            if args.vacuum and not args.dry_run:
                await store.reclaim_space(full=True)
            return 0
        finally:
            await store.close()

    return asyncio.run(run())


def _admin(args: argparse.Namespace) -> int:
    from hub.core.admins import InvalidAdminName
    from hub.core.ports import AlreadyExists
    from hub.store.store import open_store

    async def run() -> int:
        store = await open_store(Settings().resolved_database_url())
        try:
            async with store.transaction() as tx:
                return await _ADMIN_COMMANDS[args.admin_command](tx, args)
        finally:
            await store.close()

    try:
        return asyncio.run(run())
    except InvalidAdminName as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return 2
    except AlreadyExists:
        print(f"hub: admin user {args.name} exists (names are never reused)", file=sys.stderr)
        return 1


async def _add_user(tx: Tx, args: argparse.Namespace) -> int:
    from hub.api.admin_auth import mint_token
    from hub.pipeline import admin_users

    token = mint_token()
    await admin_users.add_user(
        tx,
        args.name,
        Role(args.role),
        key_id=token.key_id,
        secret_hash=token.secret_hash,
        actor=_cli_actor(args),
        now=_now(),
    )
    return _show_once(token.token)


async def _rotate(tx: Tx, args: argparse.Namespace) -> int:
    from hub.api.admin_auth import mint_token
    from hub.pipeline import admin_users

    token = mint_token()
    rotated = await admin_users.rotate(
        tx,
        args.name,
        key_id=token.key_id,
        secret_hash=token.secret_hash,
        actor=_cli_actor(args),
        now=_now(),
    )
    return _show_once(token.token) if rotated else _no_active_user(args.name)


async def _revoke(tx: Tx, args: argparse.Namespace) -> int:
    from hub.pipeline import admin_users

    if not await admin_users.revoke(tx, args.name, actor=_cli_actor(args), now=_now()):
        return _no_active_user(args.name)
    print(f"hub: admin user {args.name} revoked", file=sys.stderr)
    return 0


async def _list_users(tx: Tx, _: argparse.Namespace) -> int:
    print("name\trole\tcreated_at\trotated_at\trevoked_at")
    for user in await tx.admin_users.all():
        times = (user.created_at, user.rotated_at, user.revoked_at)
        print("\t".join([user.name, user.role, *(_when(t) for t in times)]))
    return 0


_ADMIN_COMMANDS: dict[str, Callable[[Tx, argparse.Namespace], Awaitable[int]]] = {
    "add-user": _add_user,
    "rotate": _rotate,
    "revoke": _revoke,
    "list": _list_users,
}


def _upload(args: argparse.Namespace) -> int:
    from hub.upload import target_from, upload

    target = target_from(args)
    if isinstance(target, str):
        print(f"hub upload: {target}", file=sys.stderr)
        return 2
    return upload(args.file, target)


def _cli_actor(args: argparse.Namespace) -> Actor:
    return Actor("cli", args.note)


def _now() -> datetime:
    return datetime.now(UTC)


def _when(at: datetime | None) -> str:
    return at.isoformat(timespec="seconds") if at else "-"


def _show_once(token: str) -> int:
    print(token)
    print(
        "hub: the token is shown this once and kept only as a hash: store it now", file=sys.stderr
    )
    return 0


def _no_active_user(name: str) -> int:
    print(f"hub: no active admin user {name!r}", file=sys.stderr)
    return 1
