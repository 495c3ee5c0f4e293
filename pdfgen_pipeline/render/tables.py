"""Tables of the ouvrages: flat spreadsheet XML (OpenOffice.org 1.x or OpenDocument 1.2) → HTML / PDF.

The input is untrusted: it is parsed with the hardened parser (`pdfgen_pipeline.xmlsafe`), the
huge repeat counts that spreadsheets emit for their trailing empty rows and columns are never
materialised (empty cells are not stored at all, so the table is only as large as its content),
the number of stored cells is capped, spans are clipped to the table, and every text is escaped.

Model: a `Table` is a full rectangular grid `rows[r][c]` of `Cell`s. A merged cell is the anchor
of its span (`colspan`/`rowspan` > 1) and every other position of the span is a `Cell` with
`covered=True` (omitted from the HTML). Each position is either an anchor or covered by exactly
one span.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from lxml import etree

from pdfgen_pipeline.xmlsafe import XmlInputError, parse_xml_bytes, parse_xml_file

if TYPE_CHECKING:
    from weasyprint.urls import URLFetcher

__all__ = [
    "MAX_CELLS",
    "TABLE_CSS",
    "Cell",
    "Paragraph",
    "Run",
    "Table",
    "load_table_bytes",
    "load_table_file",
    "refusing_url_fetcher",
    "render_table_pdf",
    "table_is_wide",
    "tables_to_html",
]

# Cells actually stored (non-empty or covered) for a whole file, and final grid size per table.
MAX_CELLS = 200_000
# A table wider than this many columns gets a landscape page in `render_table_pdf`.
WIDE_COLUMNS = 8
# Usable width of an A4 portrait page with the margins of `render_table_pdf`, in cm.
PORTRAIT_WIDTH_CM = 17.0
_MAX_STYLE_DEPTH = 32
_MAX_WARNINGS = 50

# --------------------------------------------------------------------------------------------
# Namespaces
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Ns:
    family: str
    office: str
    table: str
    text: str
    style: str
    fo: str

    def q(self, prefix: str, local: str) -> str:
        return f"{{{getattr(self, prefix)}}}{local}"


_OOO1 = _Ns(
    family="OpenOffice.org 1.x",
    office="http://openoffice.org/2000/office",
    table="http://openoffice.org/2000/table",
    text="http://openoffice.org/2000/text",
    style="http://openoffice.org/2000/style",
    fo="http://www.w3.org/1999/XSL/Format",
)
_ODF = _Ns(
    family="OpenDocument",
    office="urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    table="urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    text="urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    style="urn:oasis:names:tc:opendocument:xmlns:style:1.0",
    fo="urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0",
)
_FAMILIES = {_OOO1.office: _OOO1, _ODF.office: _ODF}
_XLINK_HREF = "{http://www.w3.org/1999/xlink}href"

# --------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------


@dataclass
class Run:
    """A piece of text with its effective weight and style. `\\n` is a line break, `\\t` a tab."""

    text: str
    bold: bool = False
    italic: bool = False
    href: str | None = None  # only http(s)/mailto links are kept


@dataclass
class Paragraph:
    """One `text:p` of a cell."""

    runs: list[Run] = field(default_factory=list)
    align: str | None = None  # from the paragraph style, overrides the cell's

    @property
    def text(self) -> str:
        return "".join(r.text for r in self.runs)


@dataclass
class Cell:
    """A grid position. `covered` positions belong to the span of another cell."""

    paragraphs: list[Paragraph] = field(default_factory=list)
    colspan: int = 1
    rowspan: int = 1
    bold: bool = False
    italic: bool = False
    align: str | None = None  # left | center | right | justify
    valign: str | None = None  # top | middle | bottom
    covered: bool = False

    @property
    def text(self) -> str:
        """Plain text: paragraphs joined by newlines."""
        return "\n".join(p.text for p in self.paragraphs)

    @property
    def text_runs(self) -> list[Run]:
        """All runs of all paragraphs, in order."""
        return [r for p in self.paragraphs for r in p.runs]

    @property
    def is_empty(self) -> bool:
        return not self.text.strip()


@dataclass
class Table:
    """A table (one `table:table`): a rectangular grid, trailing empty rows/columns trimmed.

    Copies of a repeated (non-spanning) cell share one `Cell` object: treat cells as read-only.
    """

    name: str
    rows: list[list[Cell]]
    column_widths: list[str | None]
    warnings: list[str] = field(default_factory=list)
    header_rows: int = 0  # leading rows rendered as <thead> (repeated on each page)
    source: str = ""

    @property
    def n_rows(self) -> int:
        return len(self.rows)

    @property
    def n_cols(self) -> int:
        return len(self.rows[0]) if self.rows else 0

    def cell(self, row: int, col: int) -> Cell:
        return self.rows[row][col]

    def texts(self) -> list[list[str]]:
        """The text of every position (covered ones as '')."""
        return [["" if c.covered else c.text for c in row] for row in self.rows]


# --------------------------------------------------------------------------------------------
# Styles
# --------------------------------------------------------------------------------------------

_PROPERTY_ELEMENTS = {
    "properties",  # OOo 1.x: every property on one element
    "table-cell-properties",
    "paragraph-properties",
    "text-properties",
    "table-column-properties",
}
_ALIGN = {
    "start": "left",
    "left": "left",
    "center": "center",
    "end": "right",
    "right": "right",
    "justify": "justify",
}
_VALIGN = {"top": "top", "middle": "middle", "center": "middle", "bottom": "bottom"}
_NUMERIC_TYPES = {"float", "percentage", "currency"}
_LENGTH_RE = re.compile(r"^\s*(\d{1,6}(?:\.\d{1,6})?)\s*(cm|mm|in|pt|pc|px)\s*$")
_TO_CM = {"cm": 1.0, "mm": 0.1, "in": 2.54, "pt": 2.54 / 72, "pc": 2.54 / 6, "px": 2.54 / 96}


@dataclass(frozen=True)
class _Style:
    bold: bool | None = None
    italic: bool | None = None
    align: str | None = None
    valign: str | None = None
    column_width: str | None = None


def _bold(value: str | None) -> bool | None:
    if value is None:
        return None
    v = value.strip().lower()
    if v in ("bold", "bolder"):
        return True
    if v in ("normal", "lighter"):
        return False
    if v.isdigit():
        return int(v) >= 600
    return None


def _italic(value: str | None) -> bool | None:
    if value is None:
        return None
    v = value.strip().lower()
    if v in ("italic", "oblique"):
        return True
    if v == "normal":
        return False
    return None


def _length(value: str | None) -> str | None:
    """A CSS-safe length (`2.5cm`), or None: the value ends up in a style attribute."""
    if not value:
        return None
    m = _LENGTH_RE.match(value)
    return f"{m.group(1)}{m.group(2)}" if m else None


def _length_cm(value: str) -> float:
    m = _LENGTH_RE.match(value)
    return float(m.group(1)) * _TO_CM[m.group(2)] if m else 0.0


class _Styles:
    """Named styles (common and automatic) by (family, name), with parent inheritance."""

    def __init__(self, root: etree._Element, ns: _Ns):
        self.ns = ns
        self._raw: dict[tuple[str, str], tuple[dict[str, str], str | None]] = {}
        self._defaults: dict[str, dict[str, str]] = {}
        self._cache: dict[tuple[str, str | None], _Style] = {}
        style_tag, default_tag = ns.q("style", "style"), ns.q("style", "default-style")
        family_attr, name_attr = ns.q("style", "family"), ns.q("style", "name")
        parent_attr = ns.q("style", "parent-style-name")
        for container in ("styles", "automatic-styles"):  # automatic ones win on a name clash
            for holder in root.iterchildren(ns.q("office", container)):
                for st in holder.iterchildren(style_tag, default_tag):
                    family = st.get(family_attr, "")
                    props = self._props(st)
                    if st.tag == default_tag:
                        self._defaults[family] = props
                    elif st.get(name_attr):
                        self._raw[(family, st.get(name_attr, ""))] = (props, st.get(parent_attr))

    @staticmethod
    def _props(st: etree._Element) -> dict[str, str]:
        props: dict[str, str] = {}
        for child in st:
            if isinstance(child.tag, str) and etree.QName(child).localname in _PROPERTY_ELEMENTS:
                props.update(child.attrib)
        return props

    def _merged(self, family: str, name: str | None) -> dict[str, str]:
        chain: list[dict[str, str]] = []
        seen: set[str] = set()
        while name and name not in seen and len(chain) < _MAX_STYLE_DEPTH:
            seen.add(name)
            entry = self._raw.get((family, name))
            if entry is None:
                break
            chain.append(entry[0])
            name = entry[1]
        merged = dict(self._defaults.get(family, {}))
        for props in reversed(chain):
            merged.update(props)
        return merged

    def get(self, family: str, name: str | None) -> _Style:
        key = (family, name)
        if key not in self._cache:
            self._cache[key] = self._interpret(self._merged(family, name))
        return self._cache[key]

    def exists(self, family: str, name: str | None) -> bool:
        return bool(name) and (family, name) in self._raw

    def _interpret(self, p: dict[str, str]) -> _Style:
        ns = self.ns
        align = None
        if p.get(ns.q("style", "text-align-source"), "fix") != "value-type":
            align = _ALIGN.get(p.get(ns.q("fo", "text-align"), "").strip().lower())
        valign_raw = p.get(ns.q("style", "vertical-align")) or p.get(ns.q("fo", "vertical-align")) or ""
        return _Style(
            bold=_bold(p.get(ns.q("fo", "font-weight"))),
            italic=_italic(p.get(ns.q("fo", "font-style"))),
            align=align,
            valign=_VALIGN.get(valign_raw.strip().lower()),
            column_width=_length(p.get(ns.q("style", "column-width"))),
        )


# --------------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------------


def _pick(*values: bool | None) -> bool:
    """The first explicit value (innermost first), False when none is."""
    for v in values:
        if v is not None:
            return v
    return False


def _safe_href(href: str | None) -> str | None:
    if not href:
        return None
    h = href.strip()
    return h if re.match(r"^(https?://|mailto:)[^\s\"'<>\\]+$", h, re.IGNORECASE) else None


class _TextCollector:
    """Collects the runs of one paragraph with ODF white-space processing (§6.1.2).

    Source white space (space, tab, CR, LF) collapses to one space and is dropped at the start
    of the paragraph; `text:s`, `text:tab` and `text:line-break` are kept verbatim.
    """

    def __init__(self) -> None:
        self.runs: list[Run] = []
        self._after_space = True  # start of paragraph: leading source white space dropped
        self._trailing_collapsible = False  # the last character is a collapsed source space

    def add(
        self, text: str | None, bold: bool, italic: bool, href: str | None, *, verbatim: bool = False
    ) -> None:
        if not text:
            return
        if not verbatim:
            out = []
            for ch in text:
                if ch in " \t\r\n":
                    if self._after_space:
                        continue
                    out.append(" ")
                    self._after_space = True
                else:
                    out.append(ch)
                    self._after_space = False
            text = "".join(out)
            if not text:
                return
            self._trailing_collapsible = text.endswith(" ")
        else:
            self._after_space = text[-1] in " \t\n"
            self._trailing_collapsible = False
        last = self.runs[-1] if self.runs else None
        if last is not None and (last.bold, last.italic, last.href) == (bold, italic, href):
            last.text += text
        else:
            self.runs.append(Run(text, bold, italic, href))

    def finish(self) -> list[Run]:
        # a trailing space from source white space (not from text:s) is not content
        if self.runs and self._trailing_collapsible:
            self.runs[-1].text = self.runs[-1].text[:-1]
            if not self.runs[-1].text:
                self.runs.pop()
        return self.runs


_TABLE_NAMES = [
    "table",
    "table-row",
    "table-cell",
    "covered-table-cell",
    "table-header-rows",
    "table-row-group",
    "table-rows",
    "table-column",
    "table-columns",
    "table-column-group",
    "table-header-columns",
    "name",
    "style-name",
    "number-rows-repeated",
    "number-columns-repeated",
    "number-columns-spanned",
    "number-rows-spanned",
    "default-cell-style-name",
    "visibility",
    "value-type",
]
_TEXT_NAMES = [
    "p",
    "h",
    "s",
    "c",
    "tab",
    "tab-stop",
    "line-break",
    "span",
    "a",
    "style-name",
    "list",
    "list-item",
    "list-header",
    "note",
    "soft-page-break",
]


class _FileParser:
    """Parses every table of one spreadsheet document."""

    def __init__(self, root: etree._Element, file: str | Path):
        self.root = root
        self.file = file
        tag = etree.QName(root)
        ns = _FAMILIES.get(tag.namespace or "")
        if ns is None or tag.localname not in ("document", "document-content"):
            raise XmlInputError(
                file,
                f'not a spreadsheet table: expected root office:document (class "spreadsheet") in the '
                f"OpenOffice.org 1.x or OpenDocument namespace, found <{tag.localname}> in "
                f"namespace {tag.namespace or '(none)'!r}",
                root.sourceline,
            )
        self.ns = ns
        office_class = root.get(ns.q("office", "class"))
        mimetype = root.get(ns.q("office", "mimetype"))
        if (office_class is not None and office_class != "spreadsheet") or (
            office_class is None and mimetype is not None and "spreadsheet" not in mimetype
        ):
            raise XmlInputError(
                file,
                f'not a spreadsheet table: expected office:class="spreadsheet", found '
                f"{office_class or mimetype!r}",
                root.sourceline,
            )
        self.styles = _Styles(root, ns)
        self.stored = 0
        self.unknown: set[str] = set()
        q = ns.q
        self.T = {name: q("table", name) for name in _TABLE_NAMES}
        self.X = {name: q("text", name) for name in _TEXT_NAMES}

    # -- document ------------------------------------------------------------------------------
    def tables(self) -> list[Table]:
        ns = self.ns
        body = self.root.find(ns.q("office", "body"))
        if body is None:
            raise XmlInputError(
                self.file, "no office:body element: not a spreadsheet document", self.root.sourceline
            )
        found: list[etree._Element] = list(body.iterchildren(self.T["table"]))
        for sheet in body.iterchildren(ns.q("office", "spreadsheet")):
            found.extend(sheet.iterchildren(self.T["table"]))
        if not found:
            raise XmlInputError(
                self.file,
                "no table:table in office:body (nor office:body/office:spreadsheet)",
                body.sourceline,
            )
        return [self._table(t, i) for i, t in enumerate(found, 1)]

    # -- one table -------------------------------------------------------------------------------
    def _table(self, el: etree._Element, index: int) -> Table:
        self.warnings: list[str] = []
        self.unknown = set()
        name = el.get(self.T["name"]) or f"Table{index}"
        self.where = f"table {name!r}"
        self.columns: list[tuple[int, int, str | None, str | None]] = []  # start, count, width, style
        self.cells: dict[tuple[int, int], Cell] = {}
        self.header_ranges: list[tuple[int, int]] = []
        self.hidden_rows: set[int] = set()
        self.spans: list[tuple[int, int, int, int]] = []  # r, c, rowspan, colspan (active ones)
        self.row = 0
        self._col_pos = 0
        self._walk(el, header=False)
        for tag in sorted(self.unknown):
            self._warn(f"unsupported element <{tag}> in a cell: its text (if any) was kept")
        return self._build(name)

    def _warn(self, message: str) -> None:
        if len(self.warnings) < _MAX_WARNINGS:
            self.warnings.append(f"{self.where}: {message}")
        elif len(self.warnings) == _MAX_WARNINGS:
            self.warnings.append(f"{self.where}: further warnings omitted")

    def _repeat(self, el: etree._Element, attr: str) -> int:
        raw = el.get(self.T[attr])
        if raw is None:
            return 1
        try:
            n = int(raw.strip())
        except ValueError:
            n = 0
        if n < 1:
            self._warn(f"line {el.sourceline}: invalid {attr}={raw!r}, taken as 1")
            return 1
        return n

    def _walk(self, el: etree._Element, header: bool) -> None:
        T = self.T
        for child in el:
            tag = child.tag
            if tag == T["table-row"]:
                self._row(child, header)
            elif tag in (T["table-row-group"], T["table-rows"]):
                self._walk(child, header)
            elif tag == T["table-header-rows"]:
                self._walk(child, True)
            elif tag == T["table-column"]:
                self._column(child)
            elif tag in (T["table-columns"], T["table-column-group"], T["table-header-columns"]):
                self._walk(child, header)

    def _column(self, el: etree._Element) -> None:
        n = self._repeat(el, "number-columns-repeated")
        width = self.styles.get("table-column", el.get(self.T["style-name"])).column_width
        self.columns.append((self._col_pos, n, width, el.get(self.T["default-cell-style-name"])))
        self._col_pos += n

    def _column_default_style(self, col: int) -> str | None:
        for start, count, _w, st in self.columns:
            if start <= col < start + count:
                return st
        return None

    def _row(self, el: etree._Element, header: bool) -> None:
        n = self._repeat(el, "number-rows-repeated")
        hidden = el.get(self.T["visibility"], "visible") != "visible"
        if header:
            self.header_ranges.append((self.row, self.row + n))
        parsed = self._parse_row(el)  # parsed once, placed `n` times
        for i in range(n):
            stored = self._place_row(parsed, self.row + i)
            if hidden and stored:
                self.hidden_rows.add(self.row + i)
            if not stored:
                # nothing stored: the remaining copies are empty too (no new span can start in them)
                break
        self.row += n

    def _parse_row(self, el: etree._Element) -> list[tuple[int, int, Cell, bool, etree._Element]]:
        """The cells of a row as (column, repeat count, cell, is empty, element)."""
        T = self.T
        row_default = el.get(T["default-cell-style-name"])
        col = 0
        out: list[tuple[int, int, Cell, bool, etree._Element]] = []
        for cel in el:
            if cel.tag == T["table-cell"]:
                covered = False
            elif cel.tag == T["covered-table-cell"]:
                covered = True
            else:
                continue
            n = self._repeat(cel, "number-columns-repeated")
            cell = self._cell(cel, row_default, col, covered)
            out.append((col, n, cell, cell.is_empty, cel))
            col += n
        return out

    def _place_row(self, parsed: list[tuple[int, int, Cell, bool, etree._Element]], r: int) -> bool:
        """Store the cells of row `r` that matter; False when the row is empty."""
        self.spans = [s for s in self.spans if s[0] + s[2] > r]  # drop spans that ended above
        stored = False
        for col, n, cell, empty, cel in parsed:
            if cell.covered:
                stored |= self._store_covered(cell, empty, r, col, n, cel)
            elif not empty or cell.colspan > 1 or cell.rowspan > 1:
                spanning = cell.colspan > 1 or cell.rowspan > 1
                for i in range(n):
                    # spanning cells get their own copy (their span may be clipped); the others
                    # repeated cells share one immutable-in-practice object
                    self._store(r, col + i, replace(cell) if spanning else cell, cel)
                    if spanning:
                        self.spans.append((r, col + i, cell.rowspan, cell.colspan))
                stored = True
        return stored

    def _store(self, r: int, c: int, cell: Cell, el: etree._Element) -> None:
        self.stored += 1
        if self.stored > MAX_CELLS:
            raise XmlInputError(
                self.file, f"too many cells (more than {MAX_CELLS}) in {self.where}", el.sourceline
            )
        self.cells[(r, c)] = cell

    def _store_covered(self, cell: Cell, empty: bool, r: int, col: int, n: int, el: etree._Element) -> bool:
        """Store the covered positions that lie in an active span (or that hold text)."""
        if not empty:
            for i in range(n):
                self._store(r, col + i, cell, el)
            return True
        stored = False
        end = col + n
        for sr, sc, srs, scs in self.spans:
            if not (sr <= r < sr + srs):
                continue
            lo, hi = max(col, sc), min(end, sc + scs)
            for c in range(lo, hi):
                if (r, c) != (sr, sc) and (r, c) not in self.cells:
                    self._store(r, c, Cell(covered=True), el)
                    stored = True
        return stored

    def _cell(self, el: etree._Element, row_default: str | None, col: int, covered: bool) -> Cell:
        T = self.T
        style_name = el.get(T["style-name"]) or row_default or self._column_default_style(col) or "Default"
        st = self.styles.get("table-cell", style_name)
        bold, italic = _pick(st.bold), _pick(st.italic)
        paragraphs: list[Paragraph] = []
        for child in el:
            self._block(child, paragraphs, bold, italic)
        if not paragraphs:
            value = (
                el.get(self.ns.q("office", "string-value"))
                or el.get(self.ns.q("office", "value"))
                or el.get(self.ns.q("table", "value"))
            )
            if value:
                paragraphs.append(Paragraph([Run(value, bold, italic)]))
        align = st.align
        if align is None:
            vtype = el.get(self.ns.q("office", "value-type")) or el.get(T["value-type"])
            if vtype in _NUMERIC_TYPES:
                align = "right"  # what the spreadsheet shows for a number without explicit alignment
        colspan = 1 if covered else self._repeat(el, "number-columns-spanned")
        rowspan = 1 if covered else self._repeat(el, "number-rows-spanned")
        return Cell(paragraphs, colspan, rowspan, bold, italic, align, st.valign, covered)

    def _block(self, el: etree._Element, out: list[Paragraph], bold: bool, italic: bool) -> None:
        X = self.X
        tag = el.tag
        if not isinstance(tag, str):
            return
        if tag in (X["p"], X["h"]):
            pst = self.styles.get("paragraph", el.get(X["style-name"]))
            pb, pi = _pick(pst.bold, bold), _pick(pst.italic, italic)
            collector = _TextCollector()
            collector.add(el.text, pb, pi, None)
            for child in el:
                self._inline(child, collector, pb, pi, None)
                collector.add(child.tail, pb, pi, None)
            out.append(Paragraph(collector.finish(), pst.align))
        elif tag in (X["list"], X["list-item"], X["list-header"]):
            for child in el:
                self._block(child, out, bold, italic)
        elif etree.QName(el).namespace == self.ns.office and etree.QName(el).localname == "annotation":
            return  # a cell comment: not printed
        else:
            self.unknown.add(etree.QName(el).localname)

    def _inline(
        self, el: etree._Element, col: _TextCollector, bold: bool, italic: bool, href: str | None
    ) -> None:
        X = self.X
        tag = el.tag
        if not isinstance(tag, str):
            return
        if tag == X["s"]:
            try:
                n = max(1, min(int(el.get(X["c"], "1")), 1000))
            except ValueError:
                n = 1
            col.add(" " * n, bold, italic, href, verbatim=True)
            return
        if tag in (X["tab"], X["tab-stop"]):
            col.add("\t", bold, italic, href, verbatim=True)
            return
        if tag == X["line-break"]:
            col.add("\n", bold, italic, href, verbatim=True)
            return
        if tag in (X["note"], X["soft-page-break"]):
            if tag == X["note"]:
                self.unknown.add("text:note")
            return
        if tag == X["span"]:
            sst = self.styles.get("text", el.get(X["style-name"]))
            bold, italic = _pick(sst.bold, bold), _pick(sst.italic, italic)
        elif tag == X["a"]:
            href = _safe_href(el.get(_XLINK_HREF)) or href
        else:
            qn = etree.QName(el)
            if qn.namespace != self.ns.text or qn.localname not in (
                "bookmark",
                "bookmark-start",
                "bookmark-end",
                "reference-mark",
            ):
                self.unknown.add(qn.localname)  # fields (dates, sheet names…): keep the text
        col.add(el.text, bold, italic, href)
        for child in el:
            self._inline(child, col, bold, italic, href)
            col.add(child.tail, bold, italic, href)

    # -- grid -----------------------------------------------------------------------------------
    def _build(self, name: str) -> Table:
        cells = self.cells
        extent = [pos for pos, c in cells.items() if not c.is_empty or c.covered]
        if not extent:
            self._warn("empty table")
            return Table(name, [], [], self.warnings, 0, str(self.file))
        height = max(r for r, _ in extent) + 1
        width = max(c for _, c in extent) + 1
        if height * width > MAX_CELLS:
            raise XmlInputError(
                self.file,
                f"{self.where} too large: {height} rows × {width} columns (limit {MAX_CELLS} cells)",
            )
        grid: list[list[Cell | None]] = [[None] * width for _ in range(height)]
        claimed: set[tuple[int, int]] = set()
        for (r, c), cell in cells.items():
            if r < height and c < width:  # (empty spanning cells beyond the content: nothing lost)
                grid[r][c] = cell

        def blocked(rr: int, cc: int) -> bool:
            if (rr, cc) in claimed:
                return True
            other = cells.get((rr, cc))
            return other is not None and not other.covered

        # spans, in document order: clip to the table, shrink around real cells and earlier spans
        for (r, c), cell in sorted(cells.items()):
            if cell.covered or r >= height or c >= width or (r, c) in claimed:
                continue
            cs, rs = cell.colspan, cell.rowspan
            if cs == 1 and rs == 1:
                continue
            if c + cs > width or r + rs > height:
                self._warn(
                    f"cell {_ref(r, c)} spans {rs} row(s) × {cs} column(s), beyond the table "
                    f"({height} × {width}): clipped"
                )
                cs, rs = min(cs, width - c), min(rs, height - r)
            new_cs = cs
            for cc in range(c + 1, c + cs):
                if blocked(r, cc):
                    new_cs = cc - c
                    break
            new_rs = rs
            for rr in range(r + 1, r + rs):
                if any(blocked(rr, cc) for cc in range(c, c + new_cs)):
                    new_rs = rr - r
                    break
            if (new_cs, new_rs) != (cs, rs):
                self._warn(
                    f"cell {_ref(r, c)}: its span overlaps other cells, reduced to "
                    f"{new_rs} row(s) × {new_cs} column(s)"
                )
            cell.colspan, cell.rowspan = new_cs, new_rs
            for rr in range(r, r + new_rs):
                for cc in range(c, c + new_cs):
                    if (rr, cc) == (r, c):
                        continue
                    claimed.add((rr, cc))
                    hidden = cells.get((rr, cc))
                    if hidden is not None and hidden.covered and not hidden.is_empty:
                        self._warn(
                            f"text hidden under merged cell {_ref(r, c)} at {_ref(rr, cc)} not "
                            f"printed: {hidden.text[:60]!r}"
                        )
                    grid[rr][cc] = Cell(covered=True)
        rows: list[list[Cell]] = []
        orphans = 0
        for r in range(height):
            row: list[Cell] = []
            for c in range(width):
                cell = grid[r][c]
                if cell is None:
                    cell = Cell()
                elif cell.covered and (r, c) not in claimed:
                    orphans += not cell.is_empty
                    cell = replace(cell, covered=False)
                row.append(cell)
            rows.append(row)
        if orphans:
            self._warn(
                f"{orphans} covered cell(s) with text outside any merged cell: printed as normal cells"
            )
        for r in sorted(self.hidden_rows):
            if r < height:
                self._warn(f"row {r + 1} is hidden in the spreadsheet: printed anyway")
        # header rows: the leading run of table-header-rows, extended over their row spans
        header = 0
        for start, end in self.header_ranges:
            if start == header:
                header = min(end, height)
        if header:
            r = 0
            while r < header:
                for cell in rows[r]:
                    if not cell.covered:
                        header = max(header, min(height, r + cell.rowspan))
                r += 1
        widths: list[str | None] = [None] * width
        for start, count, w, _st in self.columns:
            for c in range(start, min(start + count, width)):
                widths[c] = w
        return Table(name, rows, widths, self.warnings, header, str(self.file))


def _ref(r: int, c: int) -> str:
    """Spreadsheet reference of a position: (0, 0) → A1."""
    letters = ""
    n = c + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return f"{letters}{r + 1}"


def load_table_bytes(data: bytes, file: str | Path) -> list[Table]:
    """Parse the content of a flat spreadsheet file (hardened); all its tables, in order."""
    tree = parse_xml_bytes(data, file)
    return _FileParser(tree.getroot(), file).tables()


def load_table_file(path: Path) -> list[Table]:
    """Parse a flat spreadsheet XML file (hardened) and return all its tables, in order.

    Raises `XmlInputError` (file, line, column) for malformed XML, a root that is not a
    spreadsheet document, or a table above `MAX_CELLS` cells.
    """
    tree = parse_xml_file(path)
    return _FileParser(tree.getroot(), path).tables()


# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------

_SPECIAL_RE = re.compile(r"(\n|\t| {2,})")


def _text_html(text: str, *, lead: bool = False, trail: bool = False) -> str:
    """Escaped text; line breaks → <br>, tabs and runs of spaces (from text:s) kept visible.

    `lead`/`trail`: the text starts/ends its paragraph, where a single space would collapse too.
    """
    out: list[str] = []
    for i, part in enumerate(_SPECIAL_RE.split(text)):
        if not part:
            continue
        if i % 2 == 0:
            pre = post = ""
            if lead and i == 0 and part.startswith(" "):
                pre, part = '<span class="sp"> </span>', part[1:]
            if trail and part.endswith(" ") and text.endswith(part):
                part, post = part[:-1], '<span class="sp"> </span>'
            out.append(pre + html.escape(part, quote=False) + post)
        elif part == "\n":
            out.append("<br>")
        elif part == "\t":
            out.append('<span class="tab">\t</span>')
        else:
            out.append(f'<span class="sp">{part}</span>')
    return "".join(out)


def _runs_html(runs: list[Run], cell: Cell) -> str:
    out: list[str] = []
    last = len(runs) - 1
    for i, run in enumerate(runs):
        s = _text_html(run.text, lead=i == 0, trail=i == last)
        if run.bold != cell.bold:
            s = f"<b>{s}</b>" if run.bold else f'<span class="normal-weight">{s}</span>'
        if run.italic != cell.italic:
            s = f"<i>{s}</i>" if run.italic else f'<span class="normal-style">{s}</span>'
        if run.href:
            s = f'<a href="{html.escape(run.href, quote=True)}">{s}</a>'
        out.append(s)
    return "".join(out)


def _cell_html(cell: Cell, tag: str) -> str:
    classes: list[str] = []
    if cell.bold:
        classes.append("bold")
    if cell.italic:
        classes.append("italic")
    align = cell.align
    paras = cell.paragraphs
    if len(paras) == 1 and paras[0].align:
        align = paras[0].align
    if align:
        classes.append(f"align-{align}")
    if cell.valign:
        classes.append(f"valign-{cell.valign}")
    attrs = ""
    if cell.colspan > 1:
        attrs += f' colspan="{cell.colspan}"'
    if cell.rowspan > 1:
        attrs += f' rowspan="{cell.rowspan}"'
    if classes:
        attrs += f' class="{" ".join(classes)}"'
    if len(paras) == 1:
        body = _runs_html(paras[0].runs, cell)
    else:
        body = "".join(
            (f'<p class="align-{p.align}">' if p.align else "<p>") + _runs_html(p.runs, cell) + "</p>"
            for p in paras
        )
    return f"<{tag}{attrs}>{body}</{tag}>"


def _colgroup(table: Table) -> str:
    widths = table.column_widths
    if not widths or any(w is None for w in widths):
        return "<colgroup>" + "<col>" * table.n_cols + "</colgroup>"
    cms = [_length_cm(w) for w in widths if w]
    total = sum(cms)
    if total <= 0:
        return "<colgroup>" + "<col>" * table.n_cols + "</colgroup>"
    cols = "".join(f'<col style="width: {100 * w / total:.2f}%">' for w in cms)
    return f"<colgroup>{cols}</colgroup>"


def _table_width_cm(table: Table) -> float | None:
    if not table.column_widths or any(w is None for w in table.column_widths):
        return None
    return sum(_length_cm(w) for w in table.column_widths if w)


def table_is_wide(table: Table) -> bool:
    """True when the table needs a landscape page: many columns or wider than a portrait page."""
    width = _table_width_cm(table)
    return table.n_cols > WIDE_COLUMNS or (width is not None and width > PORTRAIT_WIDTH_CM)


def _rows_html(rows: list[list[Cell]], tag: str) -> Iterator[str]:
    for row in rows:
        yield "<tr>" + "".join(_cell_html(c, tag) for c in row if not c.covered) + "</tr>"


def tables_to_html(tables: list[Table], *, table_id: str | None = None) -> str:
    """HTML fragment: one `<table class="tableau">` per non-empty table.

    `<colgroup>` with relative widths, colspan/rowspan, classes `bold`, `italic`,
    `align-left|center|right|justify`, `valign-*`; covered cells omitted; every text escaped;
    leading header rows in `<thead>` (repeated on each printed page). The first table gets
    `id=table_id`, the following ones `table_id-2`, `table_id-3`…
    """
    parts: list[str] = []
    n = 0
    for table in tables:
        if not table.rows:
            continue
        n += 1
        attrs = ' class="tableau"'
        if table_id:
            tid = table_id if n == 1 else f"{table_id}-{n}"
            attrs += f' id="{html.escape(tid, quote=True)}"'
        attrs += f' data-name="{html.escape(table.name, quote=True)}"'
        width = _table_width_cm(table)
        if width:
            # the source widths, but never wider than the page (WeasyPrint ignores max-width on tables)
            attrs += f' style="width: min(100%, {width:.2f}cm)"'
        out = [f"<table{attrs}>", _colgroup(table)]
        h = table.header_rows
        if h:
            out.append("<thead>" + "".join(_rows_html(table.rows[:h], "th")) + "</thead>")
        if h < table.n_rows:
            out.append("<tbody>" + "".join(_rows_html(table.rows[h:], "td")) + "</tbody>")
        out.append("</table>")
        parts.append("".join(out))
    return "\n".join(parts)


TABLE_CSS = """
table.tableau {
  border-collapse: collapse;
  max-width: 100%;
  margin: 0.4em 0 0.8em;
  font-size: 8pt;
  line-height: 1.2;
  page-break-inside: auto;
}
table.tableau th, table.tableau td {
  border: 0.5pt solid #000;
  padding: 1pt 3pt;
  vertical-align: top;
  text-align: left;
  overflow-wrap: break-word;
  hyphens: manual;
}
table.tableau th { font-weight: normal; background: #eee; }
table.tableau thead { display: table-header-group; }
table.tableau tr { break-inside: avoid; page-break-inside: avoid; }
table.tableau td p, table.tableau th p { margin: 0; }
table.tableau td p:empty, table.tableau th p:empty { height: 1.2em; }
table.tableau td:empty, table.tableau th:empty { height: 1.2em; }
table.tableau .bold { font-weight: bold; }
table.tableau .italic { font-style: italic; }
table.tableau .normal-weight { font-weight: normal; }
table.tableau .normal-style { font-style: normal; }
table.tableau .align-left { text-align: left; }
table.tableau .align-center { text-align: center; }
table.tableau .align-right { text-align: right; }
table.tableau .align-justify { text-align: justify; }
table.tableau .valign-top { vertical-align: top; }
table.tableau .valign-middle { vertical-align: middle; }
table.tableau .valign-bottom { vertical-align: bottom; }
table.tableau .sp, table.tableau .tab { white-space: pre-wrap; }
table.tableau .tab { tab-size: 4; }
"""

# --------------------------------------------------------------------------------------------
# Standalone PDF
# --------------------------------------------------------------------------------------------


def refusing_url_fetcher() -> URLFetcher:
    """A WeasyPrint URL fetcher that refuses every URL (imported lazily: WeasyPrint is heavy)."""
    from weasyprint.urls import URLFetcher, URLFetchingError

    class RefuseAllFetcher(URLFetcher):
        """Tables have no external resources: every URL is refused (WeasyPrint skips it)."""

        def __init__(self) -> None:
            super().__init__(allowed_protocols=(), allow_redirects=False, fail_on_errors=False)
            self.refused: list[str] = []

        def fetch(self, url: str, headers: dict[str, str] | None = None) -> NoReturn:
            self._request = None
            self.refused.append(url[:200])
            raise URLFetchingError(f"external resources are not allowed in a table: {url[:200]}")

    return RefuseAllFetcher()


def render_table_pdf(table_file: Path, out_pdf: Path, *, title: str | None = None) -> int:
    """Render a table file on its own (A4, landscape when a table is wide) to `out_pdf`; page count.

    Raises `XmlInputError` when the file is not a readable spreadsheet table.
    """
    from weasyprint import HTML

    tables = load_table_file(Path(table_file))
    landscape = any(table_is_wide(t) for t in tables)
    heading = f"<h1>{html.escape(title, quote=False)}</h1>" if title else ""
    doc_title = html.escape(title or Path(table_file).stem, quote=False)
    page = "A4 landscape" if landscape else "A4"
    document = (
        f'<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>{doc_title}</title>'
        f"<style>@page {{ size: {page}; margin: 2cm 2cm; }}"
        f" body {{ font-family: 'DejaVu Sans', sans-serif; margin: 0; }}"
        f" h1 {{ font-size: 12pt; margin: 0 0 0.6em; }}{TABLE_CSS}</style></head>"
        f"<body>{heading}{tables_to_html(tables)}</body></html>"
    )
    rendered = HTML(string=document, base_url=None, url_fetcher=refusing_url_fetcher()).render()
    out = Path(out_pdf)
    out.parent.mkdir(parents=True, exist_ok=True)
    rendered.write_pdf(out)
    return len(rendered.pages)
