"""WeasyPrint documents of the book's HTML: parsed by lxml, styled with a user-agent sheet for our vocabulary.

WeasyPrint parses HTML with tinyhtml5, a pure-Python HTML5 parser (about 1 s per MB here); lxml's
libxml2 parser reads the same markup in a few milliseconds. The book's HTML is ours (written by
the Jinja2 templates, every element closed, no block inside a paragraph), so both parsers build the
same tree: `pdfgen_pipeline_tests/render/test_weasy.py` checks it on every sample book.

WeasyPrint's default user-agent stylesheet carries pseudo-element rules that match every element
(`::marker`, `::footnote-call`, `::note-*`…) and attribute selectors tested on every element;
`styles/ua.css` keeps only what the book's elements need (about 15 % of the layout time of a long
body).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path

import cssselect2
import lxml.etree
import lxml.html
from weasyprint import CSS, HTML
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher

UA_STYLESHEET = Path(__file__).parent / "styles" / "ua.css"

#: libxml2's HTML parser, without network access; comments and processing instructions dropped.
_PARSER = lxml.html.HTMLParser(no_network=True, remove_comments=True, remove_pis=True, default_doctype=False)


@cache
def ua_stylesheet() -> CSS:
    """The print user-agent stylesheet (parsed once per process)."""
    return CSS(filename=str(UA_STYLESHEET))


@cache
def font_configuration() -> FontConfiguration:
    """One font configuration per process, shared by its documents (fonts are loaded once); a forked
    process inherits its parent's."""
    return FontConfiguration()


def parse_book_html(string: str) -> ET.Element:
    """The ElementTree of one of our HTML books (or part of one), as WeasyPrint expects it."""
    root = lxml.html.document_fromstring(string, parser=_PARSER)
    return ET.fromstring(lxml.etree.tostring(root, encoding="unicode"))


class BookHTML(HTML):
    """An `HTML` document made from the book's markup with `parse_book_html` and `ua_stylesheet`."""

    def __init__(self, string: str, base_url: str | None, url_fetcher: URLFetcher):
        # `HTML.__init__` would parse with tinyhtml5: set the same attributes from lxml's tree
        tree = parse_book_html(string)
        self.base_url = base_url
        self.url_fetcher = url_fetcher
        self.media_type = "print"
        self.wrapper_element = cssselect2.ElementWrapper.from_html_root(tree, content_language=None)
        self.etree_element = self.wrapper_element.etree_element

    def _ua_stylesheets(self, forms: bool = False) -> list[CSS]:
        return [ua_stylesheet()]
