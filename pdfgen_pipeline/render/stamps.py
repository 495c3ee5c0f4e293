"""Short texts stamped on laid-out pages: alinea and title margin numbers, correction dates, footer page numbers.

WeasyPrint lays out every piece of text as boxes, about half a millisecond each: the margin numbers
of a 300-page ouvrage (about 4,000 of them) cost a fifth of its layout, and the footer numbers of
the assembled body a WeasyPrint document of their own. None of them changes the layout of the
page, so the long-book path hides them from WeasyPrint (`STAMPED_CSS`), reads from the laid-out
boxes where `book.css` would have put them (`margin_stamps`), and draws them into the PDF
(`apply_stamps`) with a subset of the same TrueType font embedded once (`StampFonts`, fontTools).

Only texts that the font's WinAnsi encoding can carry are stamped (`stampable`); the others keep
their laid-out spans. `pdfgen_pipeline_tests/render/test_stamps.py` checks that a stamped book prints
each number where the one-process layout prints it.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: the HTML stage needs only `stampable`
    import pikepdf

#: Given to WeasyPrint with the body: stamped notes are not laid out, and an alinea or title whose notes
#: are all stamped needs no positioned box (positioned boxes cost a stacking context each when drawn).
STAMPED_CSS = (".tampon { display: none !important }"  # user stylesheet: `!important` to win over book.css
               " .alinea:not(.marge), .titre:not(.marge) { position: static !important }")
MM = 72 / 25.4  # PDF points per mm
PX = 0.75  # PDF points per CSS px


@dataclass(frozen=True)
class TextStyle:
    """How a kind of stamp is printed, as `book.css` prints the same text."""

    bold: bool
    size: float  # pt
    gray: float  # 0 = black
    line_height: float | None  # × size; None = the font's own ("normal")


#: `.nmr`, `.corr-date`, and the footer numbers of `@page corps`.
STYLES = {
    "nmr": TextStyle(bold=False, size=7.0, gray=0x33 / 255, line_height=1.6),
    "date": TextStyle(bold=False, size=5.5, gray=0.0, line_height=None),
    "folio": TextStyle(bold=True, size=8.5, gray=0.0, line_height=None),
}
#: Where `book.css` puts the notes (verso: right edge; recto: left edge, after moving them outside).
NMR_LEFT, NMR_WIDTH = -13 * MM, 9 * MM
DATE_LEFT, DATE_WIDTH, DATE_TOP = -19 * MM, 15 * MM, 3.4 * MM
H1_NMR_TOP = 2 * MM
RECTO_GAP = 3 * MM
_FAMILY = "Liberation Sans"


@dataclass(frozen=True)
class Stamp:
    """One text on one page: `x` is its left edge, or its right edge when `right`; `y` its baseline
    (PDF points from the bottom left corner)."""

    page: int
    x: float
    y: float
    text: str
    kind: str  # a key of STYLES, or "leader": a dotted line from x to `to`, dots `size` apart
    right: bool = False
    to: float = 0.0
    size: float = 0.0

    def moved(self, pages: int) -> Stamp:
        return Stamp(self.page + pages, self.x, self.y, self.text, self.kind, self.right, self.to, self.size)


def stampable(text: str) -> bool:
    """Whether `text` can be stamped (every character in the WinAnsi encoding)."""
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return bool(text.strip())


# ----------------------------------------------------------------------------- the font


def font_file(bold: bool) -> Path:
    """The TrueType file fontconfig gives for Liberation Sans (what Pango uses for the same CSS)."""
    pattern = f"{_FAMILY}:{'bold' if bold else 'regular'}"
    try:
        out = subprocess.run(["fc-match", "-f", "%{file}", pattern], capture_output=True, text=True, timeout=30,
                             check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise RuntimeError(f"fc-match {pattern!r} failed ({exc}): fontconfig is needed for page stamps") from exc
    path = Path(out)
    if not path.is_file() or path.read_bytes()[:4] not in (b"\x00\x01\x00\x00", b"true"):
        raise RuntimeError(f"fontconfig gives {out!r} for {pattern!r}: not a TrueType font file")
    return path


@dataclass(frozen=True)
class FontMetrics:
    """What placing a text needs: advance widths per WinAnsi code, ascent and descent (1000 units per em)."""

    widths: dict[int, float]
    ascent: float
    descent: float  # positive

    def width(self, text: str, size: float) -> float:
        return sum(self.widths.get(b, 0.0) for b in text.encode("cp1252")) * size / 1000

    def baseline(self, style: TextStyle) -> float:
        """Distance from the top of the text's line box to its baseline, in points."""
        content = (self.ascent + self.descent) * style.size / 1000
        line = content if style.line_height is None else style.line_height * style.size
        return (line - content) / 2 + self.ascent * style.size / 1000


@cache
def _font(bold: bool) -> tuple[bytes, dict]:
    """The font's file and what its PDF dictionaries need, for every WinAnsi character it has."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    path = font_file(bold)
    font = TTFont(str(path), lazy=True)
    for tag in ("GSUB", "GPOS", "GDEF", "kern", "DSIG", "FFTM"):  # not needed, and slow to decompile
        if tag in font:
            del font[tag]
    upm = font["head"].unitsPerEm
    scale = 1000 / upm
    cmap = font.getBestCmap()
    codes = {}
    for code in range(32, 256):
        try:
            char = bytes([code]).decode("cp1252")
        except UnicodeDecodeError:
            continue
        if ord(char) in cmap:
            codes[code] = char
    options = subset.Options()
    options.layout_features = []
    options.hinting = False
    options.name_IDs = [1, 2, 6]
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(unicodes=[ord(c) for c in codes.values()])
    subsetter.subset(font)
    data = io.BytesIO()
    font.save(data)
    hmtx, cmap = font["hmtx"], font.getBestCmap()
    head, hhea = font["head"], font["hhea"]
    name = font["name"].getDebugName(6) or _FAMILY.replace(" ", "") + ("-Bold" if bold else "")
    facts = {
        "name": name,
        "widths": {code: hmtx[cmap[ord(c)]][0] * scale for code, c in codes.items()},
        "bbox": [round(v * scale) for v in (head.xMin, head.yMin, head.xMax, head.yMax)],
        "ascent": hhea.ascent * scale,
        "descent": -hhea.descent * scale,
        "cap_height": getattr(font["OS/2"], "sCapHeight", 0) * scale or hhea.ascent * scale,
        "italic_angle": font["post"].italicAngle,
    }
    return data.getvalue(), facts


def prepare_fonts() -> None:
    """Read and subset the stamp fonts now (the long-book path does it while the workers lay out the body)."""
    for bold in (False, True):
        _font(bold)


def metrics(bold: bool) -> FontMetrics:
    """The stamp font's metrics."""
    _data, facts = _font(bold)
    return FontMetrics(facts["widths"], facts["ascent"], facts["descent"])


def _embed(pdf: pikepdf.Pdf, bold: bool) -> pikepdf.Object:
    import pikepdf

    data, f = _font(bold)
    tag = "".join(chr(65 + b % 26) for b in hashlib.sha256(data).digest()[:6])
    base = pikepdf.Name("/" + tag + "+" + f["name"].replace(" ", ""))
    first, last = min(f["widths"]), max(f["widths"])
    font_file2 = pikepdf.Stream(pdf, data)
    font_file2.Length1 = len(data)
    descriptor = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.FontDescriptor, FontName=base, Flags=32, FontBBox=f["bbox"],
        ItalicAngle=f["italic_angle"], Ascent=round(f["ascent"]), Descent=-round(f["descent"]),
        CapHeight=round(f["cap_height"]), StemV=120 if bold else 80, FontFile2=pdf.make_indirect(font_file2)))
    return pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.TrueType, BaseFont=base, FirstChar=first, LastChar=last,
        Widths=[round(f["widths"].get(c, 0), 1) for c in range(first, last + 1)],
        Encoding=pikepdf.Name.WinAnsiEncoding, FontDescriptor=descriptor))


# ----------------------------------------------------------------------------- placing


def _notes(root) -> dict:
    """Element → its stamped notes [(kind, text)], from the `tampon` spans of the HTML tree."""
    out: dict = {}
    for el in root.iter():
        for child in el:
            classes = (child.get("class") or "").split()
            if "tampon" in classes:
                out.setdefault(el, []).append(("nmr" if "nmr" in classes else "date", child.text or ""))
    return out


def margin_stamps(root, pages) -> list[Stamp]:
    """The stamped notes of the laid-out `pages` of the document whose HTML tree is `root`, placed as
    `book.css` places the `.nmr` and `.corr-date` spans: on a verso right-aligned in the left margin,
    on a recto left-aligned 3 mm right of the text (where `pdf._move_margin_notes` moves them)."""
    notes = _notes(root)
    if not notes:
        return []
    regular = metrics(bold=False)
    stamps = []
    done: set = set()
    for index, page in enumerate(pages):
        page_box = page._page_box
        height = page_box.margin_height()
        recto = page_box.page_type.side == "right"
        text_right = (page_box.content_box_x() + page_box.width) * PX
        for box in page_box.descendants():
            el = box.element
            if el is None or el in done or el not in notes:
                continue
            done.add(el)  # the first box of an element is its principal box, on the page where it starts
            left = box.padding_box_x() * PX
            top = (height - box.padding_box_y()) * PX  # PDF y of the padding box's top
            for kind, text in notes[el]:
                style = STYLES[kind]
                offset = DATE_TOP if kind == "date" else (H1_NMR_TOP if box.element_tag == "h1" else 0.0)
                y = top - offset - regular.baseline(style)
                if recto:
                    stamps.append(Stamp(index, text_right + RECTO_GAP, y, text, kind))
                else:
                    edge = left + (DATE_LEFT + DATE_WIDTH if kind == "date" else NMR_LEFT + NMR_WIDTH)
                    stamps.append(Stamp(index, edge, y, text, kind, right=True))
    return stamps


@dataclass(frozen=True)
class FolioPlaces:
    """Where the footer number of a body page goes: recto right edge, verso left edge, baseline."""

    recto_right: float
    verso_left: float
    baseline: float

    def stamp(self, page: int, number: int) -> Stamp:
        if page % 2 == 0:  # the body opens on a recto
            return Stamp(page, self.recto_right, self.baseline, str(number), "folio", right=True)
        return Stamp(page, self.verso_left, self.baseline, str(number), "folio")


def folio_places(probe_pages) -> FolioPlaces:
    """Read the footer number places from a laid-out recto and verso of the body's page style
    (`parallel.folio_probe`)."""
    found = []
    for page in probe_pages[:2]:
        height = page._page_box.margin_height()
        text = next(b for b in page._page_box.descendants() if type(b).__name__ == "TextBox")
        line = next(b for b in page._page_box.descendants() if type(b).__name__ == "LineBox")
        found.append((text.position_x * PX, (text.position_x + text.width) * PX,
                      (height - line.position_y - line.baseline) * PX))
    (_l, recto_right, baseline), (verso_left, _r, _b) = found
    return FolioPlaces(recto_right, verso_left, baseline)


#: Given to WeasyPrint with the front matter of the long-book path: a contents page number sits at the right
#: of the entry's last line instead of following a `leader()` (which costs a second of layout and writing
#: on a 300-entry table of contents); `leader_stamps` draws the dots. Positioned, the number is drawn after
#: the title: the text layer reads "title number". Its box has no width (its text overflows to the right,
#: `contents.set_numbers` moves it left of the edge): no shrink-to-fit, which took half the time of laying out
#: these numbers (a 2,000-entry contents: 1.7 s).
LEADERS_CSS = (".toc-entry .pn::before { content: none !important }"
               " .toc-entry { position: relative; padding-right: 9mm }"
               " .toc-entry .pn { position: absolute !important; right: 0; bottom: 0; width: 0; white-space: nowrap }")


def _walk(box, entry=None):
    """(box, the contents entry it belongs to), in tree order, floats included."""
    if box.element is not None and "toc-entry" in (box.element.get("class") or "").split() \
            and type(box).__name__ == "BlockBox":
        entry = box
    yield box, entry
    for child in getattr(box, "children", []):
        yield from _walk(child, entry)


def leader_stamps(pages) -> list[Stamp]:
    """Dotted leaders of the contents laid out with `LEADERS_CSS`: on the line of each page number, from
    the end of the entry's text to the number (from the entry's left edge when the number fell below)."""
    stamps = []
    for index, page in enumerate(pages):
        height = page._page_box.margin_height()
        last_text: dict = {}  # entry → (its text box lowest on the page, its line)
        numbers = []  # (entry, the number's text box, its line)
        line = None
        for box, entry in _walk(page._page_box):
            name = type(box).__name__
            if name == "LineBox":
                line = box
            elif name == "TextBox" and entry is not None and line is not None:
                in_number = box.element is not None and "pn" in (box.element.get("class") or "").split()
                if in_number:
                    numbers.append((entry, box, line))
                elif box.text.strip():
                    last_text[entry] = (box, line)
        for entry, number, number_line in numbers:
            text, text_line = last_text.get(entry, (None, None))
            baseline = number_line.position_y + number_line.baseline
            if text is not None and abs(text_line.position_y + text_line.baseline - baseline) < 1:
                start = text.position_x + text.width
            else:
                start = entry.content_box_x()
            size = number.style["font_size"] * PX
            x1, x2 = start * PX + size * 0.4, number.position_x * PX - 2 * MM
            if x2 - x1 > size:
                stamps.append(Stamp(index, x1, (height - baseline) * PX, "", "leader", to=x2, size=size * 0.5))
    return stamps


# ----------------------------------------------------------------------------- drawing


def _ops(stamps: list[Stamp], names: dict[bool, pikepdf.Name]) -> bytes:
    import pikepdf

    out = [b"q"]
    for s in stamps:
        if s.kind == "leader":
            # round dots (zero-length dashes, round caps) on a grid from the page's edge: leaders align
            gap = s.size
            out.append(b"q 0 g 1 J %.3f w [0 %.3f] %.3f d %.3f %.3f m %.3f %.3f l S Q" % (
                gap * 0.18, gap, s.x % gap, s.x, s.y, s.to, s.y))
            continue
        style = STYLES[s.kind]
        m = metrics(style.bold)
        x = s.x - m.width(s.text, style.size) if s.right else s.x
        raw = s.text.encode("cp1252")
        out.append(b"BT %s %g Tf %.3f g 1 0 0 1 %.3f %.3f Tm %s Tj ET" % (
            names[style.bold].unparse(), style.size, style.gray, x, s.y, pikepdf.String(raw).unparse()))
    out.append(b"Q")
    return b"\n".join(out)


def apply_stamps(pdf: pikepdf.Pdf, stamps: list[Stamp], first_page: int = 0) -> int:
    """Draw `stamps` on the pages of `pdf` (stamp page i → page `first_page` + i); returns pages stamped."""
    import pikepdf

    by_page: dict[int, list[Stamp]] = {}
    for s in stamps:
        by_page.setdefault(first_page + s.page, []).append(s)
    if not by_page:
        return 0
    fonts = {bold: _embed(pdf, bold) for bold in {STYLES[s.kind].bold for s in stamps if s.kind in STYLES}}
    for index, page_stamps in sorted(by_page.items()):
        page = pdf.pages[index]
        names = {bold: page.add_resource(font, pikepdf.Name.Font, prefix="PdfgenStamp")
                 for bold, font in fonts.items()}
        page.contents_add(pikepdf.Stream(pdf, b"q"), prepend=True)
        page.contents_add(pikepdf.Stream(pdf, b"Q\n" + _ops(page_stamps, names)))
    return len(by_page)
