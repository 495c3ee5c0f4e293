"""Reading rendered PDFs back, independently of how they were made (for the tests)."""

from __future__ import annotations

import functools
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pdfplumber
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


def printed_page_numbers(pdf_path: Path) -> list[str]:
    """The page number printed in each page's footer (bottom 18 mm), '' when none."""
    out = []
    with pdfplumber.open(pdf_path) as pdf:
        for page in pdf.pages:
            footer = page.crop((0, page.height - 18 * 72 / 25.4, page.width, page.height))
            words = [w["text"] for w in footer.extract_words()]
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


@functools.lru_cache(maxsize=4)
def _plumbed(pdf_path: Path, mtime: float) -> pdfplumber.PDF:
    return pdfplumber.open(pdf_path)


def text_in_rect(pdf_path: Path, page: int, rect: tuple[float, float, float, float]) -> str:
    """Text inside a PDF-coordinates rectangle of a page."""
    p = _plumbed(Path(pdf_path), Path(pdf_path).stat().st_mtime).pages[page]
    x0, y0, x1, y1 = rect
    box = (max(0, x0 - 0.5), max(0, p.height - y1 - 0.5), min(p.width, x1 + 0.5), min(p.height, p.height - y0 + 0.5))
    return p.crop(box).extract_text() or ""


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
