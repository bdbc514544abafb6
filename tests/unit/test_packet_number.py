"""SIF_PacketNumber is read within its bound, from its digits, before any int is built from
an unbounded value; a response is complete from the packets present."""

from __future__ import annotations

import pytest

from hub.core.errors import SifError
from hub.core.records import PacketRecord
from hub.pipeline.ingest import _complete
from hub.sif.envelope import packet_number


@pytest.mark.parametrize(("text", "expected"), [("1", 1), (" 7 ", 7), ("0010", 10), ("100", 100)])
def test_numbers_within_the_bound(text: str, expected: int) -> None:
    assert packet_number(text, 100) == expected


@pytest.mark.parametrize(
    "text",
    ["101", "2147483647", str(2**64), str(2**70), "9" * 100_000, "0" * 50 + "101"],
)
def test_numbers_above_the_bound_are_8_12_do_not_resend(text: str) -> None:
    with pytest.raises(SifError) as refused:
        packet_number(text, 100)
    assert (refused.value.category, refused.value.code) == (8, 12)
    assert "limit of 100" in refused.value.desc
    assert "do not send this packet again" in refused.value.desc


@pytest.mark.parametrize("text", ["", "0", "000", "-1", "+1", "1.0", "abc", "١٢"])
def test_anything_but_a_positive_whole_number_is_8_12(text: str) -> None:
    with pytest.raises(SifError) as refused:
        packet_number(text, 100)
    assert (refused.value.category, refused.value.code) == (8, 12)


def _packets(*numbers_more: tuple[int, bool]) -> list[PacketRecord]:
    return sorted(
        (PacketRecord("a", "req", n, more, f"m{n}") for n, more in numbers_more),
        key=lambda p: p.packet_number,
    )


def test_complete_only_when_one_to_last_are_all_present() -> None:
    assert _complete(_packets((1, False)))
    assert _complete(_packets((1, True), (2, True), (3, False)))
    assert not _complete(_packets((1, True), (3, False)))
    assert not _complete(_packets((1, True), (2, True)))  # no last packet yet
    assert not _complete(_packets((2_147_483_647, False)))  # claims a count, proves nothing
    assert not _complete(_packets((1, False), (2, True)))  # a packet beyond the last
