"""Reading rendered PDFs back, independently of how they were made (for the tests)."""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pikepdf
import pypdfium2 as pdfium
from lxml import etree

from pdfgen_pipeline.xmlsafe import parse_xml_file

WORD = re.compile(r"\w+")


def page_texts(pdf_path: Path) -> list[str]:
    """Text layer of each page (pdfium)."""
    pdf = pdfium.PdfDocument(str(pdf_path))
    try:
        return [p.get_textpage().get_text_range() for p in pdf]
    finally:
        pdf.close()


def _printed_pieces(el: etree._Element, out: list[str]) -> None:
    """Inline runs of a `texte` join without the XML indentation between them (as printed);
    other elements are separate pieces."""
    if etree.QName(el).localname == "texte":
        out.append("".join(t for t in el.itertext() if t.strip()))
        return
    if el.text and el.text.strip():
        out.append(el.text)
    for c in el:
        if isinstance(c.tag, str):
            _printed_pieces(c, out)
        if c.tail and c.tail.strip():
            out.append(c.tail)


def xml_words(xml_path: Path) -> Counter:
    """Words of the printed content of an ouvrage XML (everything under `<ouvrage>`)."""
    root = parse_xml_file(xml_path).getroot()
    ouvrage = next(e for e in root if etree.QName(e).localname == "ouvrage")
    pieces: list[str] = []
    _printed_pieces(ouvrage, pieces)
    return Counter(WORD.findall(" ".join(pieces)))


def word_coverage(xml_path: Path, pdf_path: Path) -> tuple[float, Counter]:
    """Share of the XML's word occurrences found in the PDF text (multiset), and what is missing."""
    xml = xml_words(xml_path)
    pdf = Counter(WORD.findall(" ".join(page_texts(pdf_path))))
    total = sum(xml.values())
    hit = sum(min(c, pdf[w]) for w, c in xml.items())
    missing = Counter({w: c - pdf[w] for w, c in xml.items() if pdf[w] < c})
    return hit / total, missing


@functools.lru_cache(maxsize=4)
def _textpages(pdf_path: Path, mtime: float) -> list:
    pdf = pdfium.PdfDocument(str(pdf_path))
    return [(pdf, page, page.get_textpage()) for page in pdf]


def _pages(pdf_path: Path) -> list:
    return _textpages(Path(pdf_path), Path(pdf_path).stat().st_mtime)


def printed_page_numbers(pdf_path: Path) -> list[str]:
    """The page number printed in each page's footer (bottom 18 mm), '' when none."""
    out = []
    for _pdf, page, text in _pages(pdf_path):
        width, _height = page.get_size()
        words = text.get_text_bounded(left=0, bottom=0, right=width, top=18 * 72 / 25.4).split()
        out.append(words[-1] if words else "")
    return out


@dataclass
class Link:
    page: int  # 0-based page index of the annotation
    rect: tuple[float, float, float, float]  # PDF coordinates (x0, y0, x1, y1), origin bottom-left
    uri: str | None = None
    dest_page: int | None = None  # 0-based, for internal links


def links(pdf_path: Path) -> list[Link]:
    """Every link annotation, with its URI or its resolved destination page."""
    out = []
    with pikepdf.open(pdf_path) as pdf:
        page_index = {p.obj.objgen: i for i, p in enumerate(pdf.pages)}
        named = {}
        if "/Names" in pdf.Root and "/Dests" in pdf.Root.Names:
            tree = pikepdf.NameTree(pdf.Root.Names.Dests)
            named = {k: v for k, v in tree.items()}
        for i, page in enumerate(pdf.pages):
            for annot in page.obj.get("/Annots", []):
                if annot.get("/Subtype") != "/Link":
                    continue
                x0, y0, x1, y1 = (float(x) for x in annot.Rect)
                rect = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
                link = Link(i, rect)
                action = annot.get("/A")
                dest = annot.get("/Dest")
                if action is not None and action.get("/S") == "/URI":
                    link.uri = str(action.URI)
                elif action is not None and action.get("/S") == "/GoTo":
                    dest = action.D
                if dest is not None:
                    if isinstance(dest, pikepdf.String | pikepdf.Name):
                        dest = named.get(str(dest).lstrip("/"))
                        if isinstance(dest, pikepdf.Dictionary):
                            dest = dest.D
                    if isinstance(dest, pikepdf.Array) and len(dest):
                        link.dest_page = page_index.get(dest[0].objgen)
                out.append(link)
    return out


def text_in_rect(pdf_path: Path, page: int, rect: tuple[float, float, float, float]) -> str:
    """Text inside a PDF-coordinates rectangle (x0, y0, x1, y1) of a page."""
    _pdf, _page, text = _pages(pdf_path)[page]
    x0, y0, x1, y1 = rect
    return text.get_text_bounded(left=x0 - 0.5, bottom=y0 - 0.5, right=x1 + 0.5, top=y1 + 0.5)


def bookmarks(pdf_path: Path) -> list[tuple[int, str, int | None]]:
    """(level, title, 0-based page) of every outline item, depth first."""
    out = []
    with pikepdf.open(pdf_path) as pdf:
        page_index = {p.obj.objgen: i for i, p in enumerate(pdf.pages)}
        with pdf.open_outline() as outline:

            def walk(items, level):
                for it in items:
                    dest = it.destination
                    page = page_index.get(dest[0].objgen) if isinstance(dest, pikepdf.Array) and len(dest) else None
                    out.append((level, it.title, page))
                    walk(it.children, level + 1)

            walk(outline.root, 1)
    return out


def _inside(a, b) -> bool:
    return a != b and b[0] <= a[0] and b[1] <= a[1] and a[2] <= b[2] and a[3] <= b[3]


def toc_problems(pdf_path: Path, front_pages: int) -> tuple[int, list[str]]:
    """Check every table-of-contents entry (a link on a front page): its printed page number is the
    number in the footer of the page it links to, and that page shows the title.
    Returns (entries checked, problems)."""
    printed = printed_page_numbers(pdf_path)
    texts = ["".join(t.split()) for t in page_texts(pdf_path)]
    by_target: dict[tuple[int, int], list[tuple[float, float, float, float]]] = {}
    for lk in links(pdf_path):
        if lk.page < front_pages and lk.dest_page is not None:
            by_target.setdefault((lk.page, lk.dest_page), []).append(lk.rect)
    # an entry is a block link; the inline boxes inside it carry their own smaller rectangles
    entries = [(page, dest, r) for (page, dest), rects in by_target.items()
               for r in set(rects) if not any(_inside(r, o) for o in rects)]
    problems = []
    for page, dest, rect in entries:
        label = " ".join(text_in_rect(pdf_path, page, rect).split())
        m = re.search(r"(\d+)\s*$", label)
        if not m:
            problems.append(f"TOC entry without a page number: {label!r}")
            continue
        if printed[dest] != m.group(1):
            problems.append(f"{label!r} links to the page printed {printed[dest]!r}")
        title = re.sub(r"[ .]*\d+$", "", label).strip()
        end = "".join(title.split()[-2:])  # the end of the title: long titles wrap in the TOC
        if end not in texts[dest]:
            problems.append(f"{title!r} is not on the page printed {printed[dest]}")
    return len(entries), problems


def index_problems(pdf_path: Path, index_pages: list[int], terms: list[str]) -> tuple[int, list[str]]:
    """Check the index: each page-number link shows the number printed on the page it links to,
    and each term is printed on every page its entry lists. Returns (numbers checked, problems)."""
    printed = printed_page_numbers(pdf_path)
    raw = page_texts(pdf_path)
    texts = [re.sub(r"-[ \r\n]+", "-", re.sub(r"[ \t\r\n]+", " ", t)) for t in raw]  # U+00A0 kept
    problems = []
    checked = 0
    for lk in links(pdf_path):
        if lk.page not in index_pages or lk.dest_page is None:
            continue
        label = text_in_rect(pdf_path, lk.page, lk.rect).strip().rstrip(",")
        if label != printed[lk.dest_page]:
            problems.append(f"index link {label!r} goes to the page printed {printed[lk.dest_page]!r}")
        checked += 1
    index_text = "\n".join(raw[i] for i in index_pages).replace("\r", "")
    for term in terms:
        # an entry starts a line (pdfium may join it to the previous entry's last page number)
        m = re.search(r"(?:^|\n|(?<=\d) )" + re.escape(term) + r"\s+(\d[\d, \n]*)", index_text)
        if not m:
            problems.append(f"{term!r} is not in the index")
            continue
        for num in re.findall(r"\d+", m.group(1)):
            if num not in printed:
                problems.append(f"{term!r}: no page printed {num}")
            elif term not in texts[printed.index(num)]:
                problems.append(f"{term!r} is not on page {num}")
    return checked, problems


def misplaced_bookmarks(pdf_path: Path) -> list[tuple[str, int | None]]:
    """(title, page) of the bookmarks whose page does not print the start of their title."""
    texts = [" ".join(t.replace("\u00a0", " ").split()) for t in page_texts(pdf_path)]
    return [(title, page) for _level, title, page in bookmarks(pdf_path)
            if page is None or " ".join(title.replace("\u00a0", " ").split())[:25] not in texts[page]]
