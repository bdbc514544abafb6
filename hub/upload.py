"""`hub upload`: send a school's CSV file to a hub as its agent, with a progress bar, and
print the upload's report (status, counts, refused rows: line, column, problem).

The file is streamed from disk (never read whole); the hub answers once every row is
stored (202 with the transaction), then the report is fetched from
`GET /ingest/transactions/{id}`. Sending the same file again gives the same transaction.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

READ_BYTES = 64 * 1024
TIMEOUT = httpx.Timeout(30.0, read=3600.0)  # the hub answers once every row is stored


@dataclass(frozen=True, kw_only=True)
class UploadTarget:
    url: str
    zone: str
    kind: str
    agent: str
    secret: str


def upload(path: Path, target: UploadTarget, console: Console | None = None) -> int:
    """Exit status: 0 when the hub took the file (whatever rows it refused), else 1."""
    console = console or Console()
    auth = httpx.BasicAuth(target.agent, target.secret)
    try:
        with httpx.Client(base_url=target.url, auth=auth, timeout=TIMEOUT) as client:
            answer = _post(client, path, target, console)
            if answer.status_code != 202:
                console.print(f"[red]refused ({answer.status_code}):[/red] {_problem(answer)}")
                return 1
            report = client.get(f"/ingest/transactions/{answer.json()['id']}")
            report.raise_for_status()
    except (httpx.HTTPError, OSError) as exc:
        console.print(f"[red]upload failed:[/red] {type(exc).__name__}: {exc}")
        return 1
    show(report.json(), console)
    return 0


def _post(client: httpx.Client, path: Path, target: UploadTarget, console: Console) -> Any:
    size = path.stat().st_size
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(f"{path.name} -> {target.kind}", total=size)

        def body() -> Iterator[bytes]:
            with path.open("rb") as file:
                while chunk := file.read(READ_BYTES):
                    progress.advance(task, len(chunk))
                    yield chunk

        url = f"/ingest/{target.zone}/csv/{target.kind}"
        headers = {"Content-Type": "text/csv", "Content-Length": str(size)}
        return client.post(url, content=body(), headers=headers)


def show(report: dict[str, Any], console: Console) -> None:
    console.print(
        f"transaction {report['id']}: [bold]{report['status']}[/bold], "
        f"{report['rows']} rows, {report['accepted']} accepted, {report['rejected']} refused"
    )
    errors = report.get("errors") or []
    if errors:
        table = Table("line", "column", "problem")
        for error in errors:
            table.add_row(str(error["line"]), error["column"], error["problem"])
        console.print(table)
    if report.get("errors_not_listed"):
        console.print(f"and {report['errors_not_listed']} more problems not listed")


def _problem(answer: httpx.Response) -> str:
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:200]
    return f"{body.get('title', '')}: {body.get('detail', '')}"


def target_from(args: Any) -> UploadTarget | str:
    """The target from the command line and the environment, or what is missing."""
    secret = args.secret or os.environ.get("HUB_AGENT_SECRET")
    zone = args.zone or os.environ.get("HUB_ZONE")
    if not secret:
        return "give the agent's secret with --secret or HUB_AGENT_SECRET"
    if not zone:
        return "give the zone with --zone or HUB_ZONE"
    url = args.url or os.environ.get("HUB_URL", "http://127.0.0.1:8080")
    return UploadTarget(url=url, zone=zone, kind=args.kind, agent=args.agent, secret=secret)
