"""The real C2.2 ouvrage (../shared/corpus/c22): skipped only when the corpus is absent."""

from __future__ import annotations

import pytest
from lxml import etree

from pdfgen_pipeline.ouvrage.loader import fold
from pdfgen_pipeline.render.book import render_ouvrage
from pdfgen_pipeline.xmlsafe import parse_xml_file
from pdfgen_pipeline_tests.conftest import CORPUS_C22
from pdfgen_pipeline_tests.pdfcheck import (
    bookmarks,
    index_problems,
    misplaced_bookmarks,
    page_texts,
    toc_problems,
    word_coverage,
)

pytestmark = [
    pytest.mark.corpus,
    pytest.mark.skipif(not (CORPUS_C22 / "xml" / "document.xml").is_file(), reason="../shared/corpus absent"),
]


@pytest.fixture(scope="module")
def c22(tmp_path_factory):
    out = tmp_path_factory.mktemp("c22")
    return out, render_ouvrage(CORPUS_C22, out)


@pytest.fixture(scope="module")
def xml_root():
    return parse_xml_file(CORPUS_C22 / "xml" / "document.xml").getroot()


def _all(root, name):
    return [e for e in root.iter() if isinstance(e.tag, str) and etree.QName(e).localname == name]


def test_renders_with_placeholders_for_the_absent_images(c22):
    out, report = c22
    assert (out / "document.pdf").stat().st_size > 500_000
    assert report["warning_counts"]["missing-image"] == 507  # no image file ships with the corpus
    assert report["counts"]["titles"] == 873 and report["counts"]["alineas"] == 3150
    assert report["counts"]["index_entries"] == 1683


def test_words_of_the_xml_are_in_the_text_layer(c22):
    out, _ = c22
    coverage, missing = word_coverage(CORPUS_C22 / "xml" / "document.xml", out / "document.pdf")
    assert coverage >= 0.999, missing.most_common(20)


def test_every_title_has_a_bookmark(c22, xml_root):
    out, _ = c22
    titles = [m[1] for m in bookmarks(out / "document.pdf") if m[1] not in ("Table des matières", "Index")]
    assert len(titles) == 873
    numeros = [" ".join((t.findtext("numero") or "").split()) for t in _all(xml_root, "titre")
               if etree.QName(t.getparent()).localname != "titres"]
    assert [t.split(" ")[0] for t in titles] == numeros
    assert misplaced_bookmarks(out / "document.pdf") == []  # each opens the page that prints its title


def test_toc_page_numbers_are_exact(c22):
    out, report = c22
    checked, problems = toc_problems(out / "document.pdf", report["documents"][0]["front_pages"])
    assert checked >= 8 + 43 + 220  # chapitre, sChapitre, para
    assert problems == []


def test_the_1683_index_terms_are_in_the_index_with_exact_pages(c22, xml_root):
    out, report = c22
    doc = report["documents"][0]
    index_pages = list(range(doc["front_pages"] + doc["body_pages"], doc["pages"]))
    principals = [fold("".join(p.itertext())).strip() for p in _all(xml_root, "principal")]  # keeps U+00A0
    assert len(principals) == 1683
    index_text = " ".join(fold(page_texts(out / "document.pdf")[i]) for i in index_pages)
    absent = [p for p in principals if p not in index_text]
    assert absent == []
    checked, problems = index_problems(out / "document.pdf", index_pages, sorted(set(principals)))
    assert checked >= len(set(principals))
    assert problems == []
