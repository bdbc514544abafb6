"""Hardened XML parsing for untrusted agent payloads.

No DTD loading, no entity expansion, no network, no huge trees; any DOCTYPE is refused
before lxml sees it, so XXE and billion-laughs payloads are rejected without expansion.
"""

from __future__ import annotations

from lxml import etree

from hub.core.errors import Xml, xml_error

_PARSER = etree.XMLParser(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    dtd_validation=False,
    huge_tree=False,
    remove_comments=True,
    remove_pis=True,
)


def parse_untrusted(body: bytes) -> etree._Element:
    """Parse an agent's body or raise SIF 1/2 (not well-formed) / 1/1 (DTD refused)."""
    # XML requires these keywords in upper case; a substring scan is cheap and catches all.
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise xml_error(Xml.GENERIC, "DOCTYPE and entity declarations are not accepted")
    if not body.strip():
        raise xml_error(Xml.NOT_WELL_FORMED, "Empty message body")
    try:
        root = etree.fromstring(body, parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno is not None else "?"
        raise xml_error(
            Xml.NOT_WELL_FORMED, "Message is not well-formed XML", f"line {line}: {exc.msg}"
        ) from None
    if _has_dtd(root):  # the byte scan misses UTF-16/32 bodies; entities stay unexpanded
        raise xml_error(Xml.GENERIC, "DOCTYPE and entity declarations are not accepted")
    return root


def _has_dtd(root: etree._Element) -> bool:
    info = root.getroottree().docinfo
    return bool(
        getattr(info, "doctype", "")  # not in lxml-stubs
        or info.internalDTD is not None
        or info.system_url
        or next(root.iter(etree.Entity), None) is not None
    )


def parse_trusted(data: bytes) -> etree._Element:
    """Parse XML the hub itself stored (already validated at ingest)."""
    return etree.fromstring(data, parser=_PARSER)
