"""Hardened XML parsing shared by every reader of untrusted XML (ouvrages, tables, SVG).

No entity expansion, no DTD loading or validation, no network, bounded size and depth.
Errors become `XmlInputError` naming the file, the line and column, and what is wrong.
"""

from __future__ import annotations

import re
from pathlib import Path

from lxml import etree

MAX_FILE_BYTES = 64 * 1024 * 1024  # the real C2.2 is 2.8 MB; a 50 MB text node must still be refused
MAX_DEPTH = 256


class XmlInputError(ValueError):
    """Bad XML input: `str()` is a one-line message naming the file, line and column."""

    def __init__(self, file: str | Path, message: str, line: int | None = None, column: int | None = None):
        self.file = str(file)
        self.line = line
        self.column = column
        self.reason = message
        where = self.file
        if line:
            where += f":{line}"
            if column:
                where += f":{column}"
        super().__init__(f"{where}: {message}")


def hardened_parser(*, huge_tree: bool = False) -> etree.XMLParser:
    """An lxml parser that never resolves entities, loads DTDs or touches the network."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=huge_tree,
        remove_comments=True,
        remove_pis=False,
        strip_cdata=True,
    )


def _check_depth(root: etree._Element, file: str | Path) -> None:
    stack = [(root, 1)]
    while stack:
        el, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise XmlInputError(file, f"elements nested deeper than {MAX_DEPTH} levels", el.sourceline)
        stack.extend((c, depth + 1) for c in el)


_DECLARED = re.compile(rb"""^<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


def _decode_check(data: bytes, file: str | Path) -> bytes:
    """Refuse UTF-16 without BOM, and a UTF-16 declaration on bytes that are not UTF-16."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data
    if len(data) >= 2 and (data[0] == 0) != (data[1] == 0):
        raise XmlInputError(file, "UTF-16 text without a byte-order mark (BOM): save it as UTF-8 or as "
                            "UTF-16 with BOM", 1)
    declared = _DECLARED.match(data.lstrip(b"\xef\xbb\xbf"))
    if declared and declared.group(1).upper().replace(b"_", b"-") in (b"UTF-16", b"UTF16", b"UTF-16LE", b"UTF-16BE"):
        raise XmlInputError(file, f"declares encoding=\"{declared.group(1).decode()}\" but the bytes are not "
                            "UTF-16 (no byte-order mark): fix the declaration or the encoding", 1)
    return data


def _reason(exc: etree.XMLSyntaxError) -> str:
    """lxml's message, on one line, without its location suffix and libxml2 jargon."""
    msg = " ".join((exc.msg or str(exc)).split())
    msg = msg.split(", line ")[0]
    if "Excessive depth" in msg:
        return f"elements nested deeper than {MAX_DEPTH} levels"
    if "huge text node" in msg or "Huge input lookup" in msg or "Text node too long" in msg:
        return "a text node is larger than 10 MB"
    if "amplification factor" in msg:  # libxml2 2.12+ spots billion laughs even without expanding
        return "entity declarations expanding too much (billion laughs): not allowed"
    if "Buffer size limit exceeded" in msg:  # libxml2 2.11+: an attribute value over 10 MB
        return "an attribute value is larger than 10 MB"
    # never suggest a parser option the user cannot set
    msg = re.sub(r",? *(try|use) XML_PARSE_HUGE( option)?", "", msg).strip()
    return f"malformed XML: {msg}"


def parse_xml_bytes(data: bytes, file: str | Path, *, max_bytes: int = MAX_FILE_BYTES) -> etree._ElementTree:
    """Parse `data` (the content of `file`) with the hardened parser.

    Refuses files over `max_bytes`, DOCTYPE declarations with entities (XXE, billion laughs),
    UTF-16 without BOM, and nesting deeper than MAX_DEPTH.
    """
    if len(data) > max_bytes:
        raise XmlInputError(file, f"file too large ({len(data)} bytes, limit {max_bytes})")
    if not data.strip():
        raise XmlInputError(file, "empty file")
    data = _decode_check(data, file)
    try:
        # huge_tree stays off: libxml2 then refuses text nodes over 10 MB and nesting over 256 levels
        tree = etree.ElementTree(etree.fromstring(data, hardened_parser()))
    except etree.XMLSyntaxError as exc:
        line, col = exc.position if exc.position else (None, None)
        raise XmlInputError(file, _reason(exc), line, col) from None
    internal = tree.docinfo.internalDTD
    if internal is not None and (list(internal.iterentities()) or list(internal.iterelements())):
        # entities are never expanded, but an internal DTD subset in a referentiel file is always
        # suspect (XXE, billion laughs); a bare external DOCTYPE (OpenOffice 1.x) is never loaded
        raise XmlInputError(file, "DOCTYPE with an internal subset (entity or element declarations) is "
                            "not allowed", 1)
    _check_depth(tree.getroot(), file)
    return tree


def parse_xml_file(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES) -> etree._ElementTree:
    """Read and parse a file with `parse_xml_bytes`; a missing file is an `XmlInputError` too."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > max_bytes:
            raise XmlInputError(p, f"file too large ({size} bytes, limit {max_bytes})")
        data = p.read_bytes()
    except FileNotFoundError:
        raise XmlInputError(p, "file not found") from None
    except IsADirectoryError:
        raise XmlInputError(p, "is a directory, not an XML file") from None
    return parse_xml_bytes(data, p, max_bytes=max_bytes)
