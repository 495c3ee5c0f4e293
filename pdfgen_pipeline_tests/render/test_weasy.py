"""The lxml-parsed WeasyPrint document builds the same tree as WeasyPrint's own HTML5 parser."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
import tinyhtml5

from pdfgen_pipeline.render.html import split_parts
from pdfgen_pipeline.render.weasy import BookHTML, parse_book_html, ua_stylesheet
from pdfgen_pipeline_tests.conftest import CORPUS_C22


def _ws(text: str | None, tag: str) -> str:
    # runs of white space count as one space (they are collapsed); the white space the HTML5 parser drops
    # around <html>, <head> and <body> (and the comments lxml drops) counts as nothing
    text = re.sub(r"\s+", " ", text or "")
    return "" if text == " " and tag in ("html", "head", "body") else text


def _shape(root: ET.Element) -> list[tuple]:
    """Every element in document order with its attributes, text and tail (comments left out)."""
    return [(el.tag, dict(el.attrib), _ws(el.text, el.tag), _ws(el.tail, el.tag)) for el in root.iter()
            if isinstance(el.tag, str)]


def _books(rendered) -> list[tuple[str, str]]:
    return [(f"{key}/{p.name}", p.read_text("utf-8")) for key, (out, _r) in rendered.items()
            for p in sorted(out.glob("*.html"))]


def test_same_tree_as_tinyhtml5_on_every_sample_book_and_part(rendered):
    books = _books(rendered)
    assert len(books) >= 4
    for name, html in books:
        prefix, parts, suffix = split_parts(html)
        for part, markup in [("whole", html)] + [(k, prefix + v + suffix) for k, v in parts.items()]:
            ours = _shape(parse_book_html(markup))
            theirs = _shape(tinyhtml5.parse(markup, namespace_html_elements=False))
            assert ours == theirs, (name, part, next((a, b) for a, b in zip(ours, theirs, strict=False) if a != b))


def test_same_tree_on_the_real_ouvrage(tmp_path):
    if not (CORPUS_C22 / "xml" / "document.xml").is_file():
        pytest.skip("../shared/corpus/c22 absent")
    from pdfgen_pipeline.render.book import build_html
    from pdfgen_pipeline.render.report import GenerationLog

    build_html(CORPUS_C22, tmp_path, GenerationLog(tmp_path / "log"))
    html = (tmp_path / "document.html").read_text("utf-8")
    assert _shape(parse_book_html(html)) == _shape(tinyhtml5.parse(html, namespace_html_elements=False))


def test_markup_tinyhtml5_would_repair_differently_is_caught():
    # a block inside a paragraph: the HTML5 parser closes the paragraph, libxml2 does not —
    # the comparison above is what keeps the templates away from such markup
    html = "<html><body><p>a<div>b</div>c</p></body></html>"
    assert _shape(parse_book_html(html)) != _shape(tinyhtml5.parse(html, namespace_html_elements=False))


def _layout(doc) -> list[list[tuple]]:
    """Each page's boxes: type, text, position and size, rounded to 1/100 px."""
    def walk(box):
        yield box
        for child in getattr(box, "children", []):
            yield from walk(child)
            if type(child).__name__ == "AbsolutePlaceholder":
                yield from walk(child._box)
    return [[(type(b).__name__, getattr(b, "text", None), round(b.position_x, 2), round(b.position_y, 2),
              round(b.width or 0, 2), round(b.height or 0, 2)) for b in walk(p._page_box)] for p in doc.pages]


def test_ua_stylesheet_lays_out_the_sample_books_as_weasyprints_own(rendered):
    from weasyprint import HTML

    from pdfgen_pipeline.render.fetcher import SandboxedURLFetcher

    for key in ("c99", "lf1"):
        out, _report = rendered[key]
        path = out / "document.html"
        html = path.read_text("utf-8")
        fetcher = SandboxedURLFetcher(out)
        ours = BookHTML(html, path.as_uri(), fetcher).render()
        theirs = HTML(string=html, base_url=path.as_uri(), url_fetcher=fetcher).render()
        assert len(ours.pages) == len(theirs.pages) > 3
        for i, (a, b) in enumerate(zip(_layout(ours), _layout(theirs), strict=True)):
            assert a == b, (key, i, next((x, y) for x, y in zip(a, b, strict=False) if x != y))
        assert ours.make_bookmark_tree() == theirs.make_bookmark_tree()
        assert [[link[:3] for link in p.links] for p in ours.pages] == [[link[:3] for link in p.links]
                                                                         for p in theirs.pages]
        assert [p.anchors for p in ours.pages] == [p.anchors for p in theirs.pages]
    assert ua_stylesheet() is ua_stylesheet()
