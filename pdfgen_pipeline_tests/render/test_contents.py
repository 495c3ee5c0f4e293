"""Contents numbers written into the front matter laid out before them print as the one-process layout prints
them, in their place in the text layer."""

from __future__ import annotations

import re

import pdfplumber
import pytest

from pdfgen_pipeline.render import contents
from pdfgen_pipeline.render.weasy import BookHTML, font_configuration
from pdfgen_pipeline_tests.pdfcheck import page_texts


def _numbers(pdf_path, pages: int) -> list[tuple]:
    """The contents numbers of the front pages: (page, number, x1, baseline), in order."""
    out = []
    with pdfplumber.open(pdf_path) as pdf:
        for i in range(pages):
            page = pdf.pages[i]
            for w in page.extract_words():
                # an entry's number ends at the right edge of the text block (a folio is lower, in the margin)
                if re.fullmatch(r"\d+", w["text"]) and w["x1"] > page.width - 90 and w["bottom"] < page.height - 60:
                    out.append((i, w["text"], round(w["x1"], 1), round(w["bottom"], 1)))
    return out


def test_numbers_print_where_the_one_process_layout_prints_them(parallel_c99):
    out, pdf, result = parallel_c99
    assert "body_groups" in result.seconds and result.toc_unresolved == 0
    ours, theirs = _numbers(pdf, result.front_pages), _numbers(out / "document.pdf", result.front_pages)
    assert len(ours) >= 40 and [n[:2] for n in ours] == [n[:2] for n in theirs]
    assert {n[1] for n in ours} != {contents.PLACEHOLDER}
    for a, b in zip(ours, theirs, strict=True):
        assert abs(a[2] - b[2]) < 0.6 and abs(a[3] - b[3]) < 0.6, (a, b)


def test_numbers_follow_their_titles_in_the_text_layer(parallel_c99):
    _out, pdf, result = parallel_c99
    toc = next(t for t in page_texts(pdf)[:result.front_pages] if "Table des matières" in t)
    lines = [line for line in toc.splitlines()[1:] if line.strip()]
    assert sum(bool(re.search(r"\D \d+\s*$", line)) for line in lines) >= 0.8 * len(lines)


def test_text_width_is_pangos():
    # any laid-out text style will do: the width of "0" grows linearly with the digits (tabular figures)
    doc = BookHTML("<p>1</p>", "file:///", None).render(font_config=font_configuration())
    style = next(b for b in doc.pages[0]._page_box.descendants() if type(b).__name__ == "TextBox").style
    one, three = contents.text_width("0", style), contents.text_width("000", style)
    assert one > 0 and three == pytest.approx(3 * one, rel=0.01) and contents.text_width("", style) == 0
