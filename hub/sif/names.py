"""Qualified names in the SIF UK namespace, built once."""

from __future__ import annotations

from hub.core.envelope import SIF_UK_NS

NS = SIF_UK_NS
NSMAP = {None: NS}
XPATH_NS = {"s": NS}


def q(local: str) -> str:
    return f"{{{NS}}}{local}"


def local_name(tag: object) -> str:
    text = str(tag)
    return text.rsplit("}", 1)[-1]
