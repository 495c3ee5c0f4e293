"""Overlaid running heads print what and where WeasyPrint's own layout prints them."""

from __future__ import annotations

import pdfplumber
import pikepdf

from pdfgen_pipeline.render.heads import HEADLESS_CSS, chapter_labels, running_labels

HEAD_SIZE = 7.5


def _heads(pdf_path, first: int, last: int) -> dict[int, list[tuple]]:
    """Page → the words of its running head (7.5 pt, above the text block): (text, x0, x1, baseline)."""
    out = {}
    with pdfplumber.open(pdf_path) as pdf:
        for i in range(first, last):
            words = pdf.pages[i].extract_words(extra_attrs=["size"])
            out[i] = sorted((w["text"], w["x0"], w["x1"], w["bottom"]) for w in words
                            if round(w["size"], 1) == HEAD_SIZE and w["bottom"] < 22 * 72 / 25.4)
    return out


def test_overlaid_heads_match_the_one_process_layout(parallel_c99):
    out, pdf, result = parallel_c99
    assert "body_groups" in result.seconds  # the long-book path
    first, last = result.front_pages, result.front_pages + result.body_pages
    ours, theirs = _heads(pdf, first, last), _heads(out / "document.pdf", first, last)
    compared, pages_with_heads, chapters = 0, 0, set()
    for page in range(first, last):
        assert [w[0] for w in ours[page]] == [w[0] for w in theirs[page]], page
        for a, b in zip(ours[page], theirs[page], strict=True):
            assert abs(a[1] - b[1]) < 0.1 and abs(a[2] - b[2]) < 0.1 and abs(a[3] - b[3]) < 0.1, (page, a, b)
            compared += 1
        pages_with_heads += bool(ours[page])
        chapters.add(" ".join(w[0] for w in ours[page]))
    # heads on most body pages, several chapters, both sides
    assert pages_with_heads >= 0.8 * result.body_pages and len(chapters) >= 4 and compared > 100


def test_one_form_per_chapter_and_side(parallel_c99):
    out, pdf_path, result = parallel_c99
    labels = chapter_labels((out / "document.html").read_text("utf-8"))
    forms = set()
    with pikepdf.open(pdf_path) as pdf:
        for page in list(pdf.pages)[result.front_pages:result.front_pages + result.body_pages]:
            names = [n for n in page.Resources.get("/XObject", {}) if n.startswith("/PdfgenHead")]
            forms.update(page.Resources.XObject[n].objgen for n in names)
            assert len(names) <= 2 * len(labels)  # one name per form, in resources that pages share
    assert 2 <= len(forms) <= 2 * len(labels)


def test_the_groups_lay_out_no_head():
    assert HEADLESS_CSS.count("@top-left { content: none !important }") == 2


def test_labels():
    body = ('<h1 id="a" data-label="1. Généralités" class="titre">x</h1><h2 data-label="1.1. Non" class="titre">'
            '<h1 id="b" data-label="2. Côte &amp; îles" class="titre">y</h1><h1 class="titre-ouvrage">z</h1>')
    assert chapter_labels(body) == ["", "1. Généralités", "2. Côte & îles"]
    assert running_labels([None, "A", None, None, "B", None]) == ["", "A", "A", "A", "B", "B"]
