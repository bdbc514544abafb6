"""Batched copies (hub.pipeline.batches): properties of bundling, since it decides which
copies leave in which message and whose outcome each copy takes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from hub.core import naming
from hub.core.ports import Outgoing
from hub.pipeline import batches
from hub.pipeline.batches import bundle
from hub.sif.build import COPY_BATCH_NS

SUBSCRIBERS = ("cme", "vs", "hr")


def _copy(i: int, subscriber: str, size: int = 10) -> Outgoing:
    body = (
        f"<?xml version='1.0' encoding='UTF-8'?>\n<SIF_Message><Id>{i}</Id>"
        f"<Pad>{'x' * size}</Pad></SIF_Message>"
    ).encode()
    headers = {naming.H_SUBSCRIBER: subscriber, naming.H_AGREEMENT: f'a&"<{i}'}
    return Outgoing(f"q.{subscriber}", body, f"ID{i:030d}", headers)


def _c14n(element: etree._Element) -> bytes:
    return etree.tostring(element, method="c14n", exclusive=True)


copies_st = st.lists(st.sampled_from(SUBSCRIBERS), max_size=60).map(
    lambda subs: [_copy(i, s) for i, s in enumerate(subs)]
)
batches_st = st.dictionaries(st.sampled_from(SUBSCRIBERS), st.integers(1, 7))


@settings(max_examples=300)
@given(copies=copies_st, sizes=batches_st)
def test_every_copy_leaves_once_in_its_own_subscribers_queue_within_n(
    copies: list[Outgoing], sizes: dict[str, int]
) -> None:
    bundled = bundle(copies, sizes)
    flat = sorted(i for members in bundled.members for i in members)
    assert flat == list(range(len(copies)))
    for out, members in zip(bundled.outgoing, bundled.members, strict=True):
        subs = {copies[i].headers[naming.H_SUBSCRIBER] for i in members}
        assert len(subs) == 1
        (sub,) = subs
        assert out.queue == f"q.{sub}"
        n = sizes.get(sub, 1)
        if n <= 1:
            assert members and len(members) == 1 and out is copies[members[0]]
            continue
        assert 1 <= len(members) <= n
        assert members == sorted(members)  # order kept within a subscriber
        assert out.type == naming.COPY_BATCH_TYPE
        assert out.headers[naming.H_BATCH_COUNT] == str(len(members))
        root = etree.fromstring(out.body)
        assert root.tag == f"{{{COPY_BATCH_NS}}}SIF_CopyBatch"
        assert root.get("MsgId") == out.message_id and root.get("Count") == str(len(members))
        for copy_el, i in zip(root, members, strict=True):
            assert dict(copy_el.attrib) == copies[i].headers  # escaping round-trips
            alone = etree.fromstring(copies[i].body)
            assert _c14n(copy_el[0]) == _c14n(alone)  # the copy, exactly as it leaves alone


@given(copies=copies_st, sizes=batches_st, data=st.data())
def test_each_copy_takes_its_messages_outcome(
    copies: list[Outgoing], sizes: dict[str, int], data: st.DataObject
) -> None:
    bundled = bundle(copies, sizes)
    results: list[Exception | None] = [
        data.draw(st.sampled_from([None, RuntimeError(str(k))]))
        for k in range(len(bundled.outgoing))
    ]
    per_copy = bundled.per_copy(results, len(copies))
    for result, members in zip(results, bundled.members, strict=True):
        for i in members:
            assert per_copy[i] is result


def test_a_batch_id_is_the_same_for_the_same_members_and_differs_otherwise() -> None:
    copies = [_copy(i, "cme") for i in range(5)]
    first = bundle(copies, {"cme": 5}).outgoing[0].message_id
    assert bundle(copies, {"cme": 5}).outgoing[0].message_id == first
    assert bundle(copies[1:], {"cme": 5}).outgoing[0].message_id != first


def test_a_batch_stops_growing_at_the_byte_cap(monkeypatch: object) -> None:
    import pytest

    mp = pytest.MonkeyPatch()
    mp.setattr(batches, "MAX_BATCH_BYTES", 300)
    try:
        copies = [_copy(i, "cme", size=100) for i in range(6)]
        bundled = bundle(copies, {"cme": 100})
        assert len(bundled.outgoing) > 1
        assert all(sum(len(copies[i].body) for i in m) <= 300 for m in bundled.members)
    finally:
        mp.undo()
