"""File export stage throughput on a real SQLite store (no broker): N released copies
(their disclosure rows written first) handed to the stager with C in hand at once, as the
queue consumer does, then cut into one CSV file with its manifest. Figures only; nothing is
asserted.

    .venv/bin/python bench/file_export.py --copies 5000 --in-flight 200
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.file_export import CsvFiles
from hub.core import naming
from hub.core.config import FileDelivery
from hub.core.envelope import HUB_VERSION, SIF_UK_NS, Action
from hub.core.ports import Delivered, PushResult
from hub.core.records import DisclosureRecord
from hub.core.retry import RetryLadder
from hub.pipeline.deliver import PushContext
from hub.pipeline.export import ExportContext, cut_once, stage_copy
from hub.sif.build import event_copy
from hub.store.store import open_store

T0 = datetime(2026, 3, 2, 7, tzinfo=UTC)
COLUMNS = {
    "RefId": "@RefId",
    "UPN": "UPN",
    "Surname": "PersonalInformation/Name/FamilyName",
    "Forename": "PersonalInformation/Name/GivenName",
}


def body() -> bytes:
    obj = etree.Element(f"{{{SIF_UK_NS}}}LearnerPersonal", RefId="A" * 32)
    etree.SubElement(obj, f"{{{SIF_UK_NS}}}UPN").text = "A123456789012"
    name = etree.SubElement(
        etree.SubElement(obj, f"{{{SIF_UK_NS}}}PersonalInformation"), f"{{{SIF_UK_NS}}}Name"
    )
    etree.SubElement(name, f"{{{SIF_UK_NS}}}FamilyName").text = "Smith"
    etree.SubElement(name, f"{{{SIF_UK_NS}}}GivenName").text = "Jo"
    return event_copy(HUB_VERSION, "agent", "C", "LearnerPersonal", "Add", obj)


def disclosure(i: int) -> DisclosureRecord:
    return DisclosureRecord(
        outbox_id="o",
        message_id="m",
        copy_msg_id=f"C{i}",
        subscriber="s",
        agreement_id="A",
        agreement_version=1,
        object_name="LearnerPersonal",
        action=Action.ADD,
        school=None,
        subject_refid=None,
        published_at=T0,
    )


async def run(copies: int, in_flight: int) -> None:
    tmp = Path(tempfile.mkdtemp())
    store = await open_store(f"sqlite+aiosqlite:///{tmp}/hub.db")
    push = PushContext(store, _NoPusher(), RetryLadder(), lambda: T0, disclosure_waits=())
    ctx = ExportContext(store, CsvFiles(), push, lambda agreement, version: 365, lambda: T0)
    raw = {"type": "file", "directory": str(tmp / "out"), "max_rows": copies}
    target = FileDelivery.model_validate({**raw, "export": {"LearnerPersonal": COLUMNS}})
    headers = {
        naming.H_OBJECT: "LearnerPersonal",
        naming.H_ACTION: "Add",
        naming.H_AGREEMENT: "A",
        naming.H_AGREEMENT_VERSION: "1",
    }
    data = body()
    async with store.transaction() as tx:
        await tx.disclosures.add([disclosure(i) for i in range(copies)])
    gate = asyncio.Semaphore(in_flight)

    async def one(i: int) -> None:
        async with gate:
            copy = Delivered(message_id=f"C{i}", body=data, headers=headers)
            await stage_copy(ctx, "s", target, copy)

    began = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(copies)))
    staged = time.perf_counter()
    made = await cut_once(ctx, "s", target, force=True)
    cut = time.perf_counter()
    await store.close()
    assert made is not None
    print(
        f"copies={copies} in_flight={in_flight} staged in {staged - began:.2f} s "
        f"({copies / (staged - began):.0f}/s); one file of {made.rows} rows, "
        f"{made.size_bytes} bytes, cut in {cut - staged:.2f} s"
    )


class _NoPusher:
    async def push(
        self, url: str, sealed_secret: bytes, copy: Delivered, *, timeout_seconds: float
    ) -> PushResult:
        raise AssertionError("the file route never pushes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=5000)
    parser.add_argument("--in-flight", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(run(args.copies, args.in_flight))


if __name__ == "__main__":
    main()
