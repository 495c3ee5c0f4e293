"""The index laid out as columns by two processes and imposed two to a page gives the same index."""

from __future__ import annotations

import re
from collections import Counter
from html import unescape

import pytest

from pdfgen_pipeline.render import imposition
from pdfgen_pipeline.render.html import split_parts
from pdfgen_pipeline.render.pdf import render_pdf
from pdfgen_pipeline_tests.pdfcheck import index_problems, links, page_texts, printed_page_numbers


def _entries(html: str) -> list[str]:
    return re.findall(r'<p class="index-entree">.*?</p>', html)


def test_split_index_keeps_every_entry_once_in_order(rendered):
    out, _report = rendered["c99"]
    _prefix, parts, _suffix = split_parts((out / "document.html").read_text("utf-8"))
    assert imposition.split_index(parts["back"]) is None  # too small to be worth two processes
    cut = imposition.split_index(parts["back"], min_chars=0)
    assert cut is not None and len(cut.halves) == 2
    assert all(h.lstrip().startswith('<h2 class="index-lettre"') for h in cut.halves)
    assert [e for h in cut.halves for e in _entries(h)] == _entries(parts["back"])
    assert _entries(cut.frame) == [] and 'class="index-titre"' in cut.frame


def _big_index(html: str, times: int = 6) -> str:
    """The same book with each index entry listed `times` times: an index of several columns per half."""
    return re.sub(r'<p class="index-entree">.*?</p>\n?', lambda m: m.group(0) * times, html)


def _render(out, name: str, pdf, min_part_chars: int):
    mp = pytest.MonkeyPatch()
    mp.setattr(imposition, "MIN_PART_CHARS", min_part_chars)
    try:
        return render_pdf(out / name, pdf, sandbox_root=out, workers=2, min_parallel_chars=0)
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def imposed_c99(rendered, tmp_path_factory):
    out, _report = rendered["c99"]
    tmp = tmp_path_factory.mktemp("imposed")
    (out / "big-index.html").write_text(_big_index((out / "document.html").read_text("utf-8")), "utf-8")
    try:
        imposed = _render(out, "big-index.html", tmp / "imposed.pdf", 0)
        whole = _render(out, "big-index.html", tmp / "whole.pdf", 10**9)
    finally:
        (out / "big-index.html").unlink()
    return out, tmp, imposed, whole


def _index_words(pdf, result) -> Counter:
    texts = page_texts(pdf)
    return Counter(w for i in range(result.pages - result.back_pages, result.pages)
                   for w in re.findall(r"[^\W\d]+", texts[i]) if w != w.upper())  # letter headings extract unevenly


def test_imposed_index_has_every_term_with_exact_page_links(imposed_c99):
    out, tmp, result, whole = imposed_c99
    pdf = tmp / "imposed.pdf"
    assert result.seconds["index_columns"] >= 4 and "index_columns" not in whole.seconds
    html = (out / "document.html").read_text("utf-8")
    terms = [unescape(t) for t in re.findall(r'<span class="terme">([^<]+)</span>', html)]
    index_pages = list(range(result.pages - result.back_pages, result.pages))
    checked, problems = index_problems(pdf, index_pages, terms)
    assert checked >= 6 * len(terms) and problems == []
    # the same entries as the two-column layout; a half starts at the top of a column: one page more at most
    assert _index_words(pdf, result) == _index_words(tmp / "whole.pdf", whole)
    assert whole.back_pages <= result.back_pages <= whole.back_pages + 1
    printed = printed_page_numbers(pdf)
    assert [printed[i] for i in index_pages] == [str(i - result.front_pages + 1) for i in index_pages]
    assert "Index" in page_texts(pdf)[index_pages[0]]
    assert not [lk.uri for lk in links(pdf) if lk.uri and lk.uri.startswith("pdfgen-anchor:")]
    # the contents' "Index" entry opens the index's first page
    assert any(lk.page < result.front_pages and lk.dest_page == index_pages[0] for lk in links(pdf))


def test_frame_estimate_too_low_or_high_gives_the_same_index(imposed_c99):
    out, tmp, result, _whole = imposed_c99
    (out / "big-index.html").write_text(_big_index((out / "document.html").read_text("utf-8")), "utf-8")
    mp = pytest.MonkeyPatch()
    try:
        for chars, name in ((10**9, "low.pdf"), (1000, "high.pdf")):  # 1 page estimated; 3 times too many
            mp.setattr(imposition, "CHARS_PER_COLUMN", chars)
            other = _render(out, "big-index.html", tmp / name, 0)
            assert (other.pages, other.back_pages) == (result.pages, result.back_pages)
            assert page_texts(tmp / name)[-result.back_pages:] == page_texts(tmp / "imposed.pdf")[-result.back_pages:]
    finally:
        mp.undo()
        (out / "big-index.html").unlink()
    cut = imposition.split_index(_big_index(split_parts((out / "document.html").read_text("utf-8"))[1]["back"]),
                                 min_chars=0)
    assert imposition.frame_pages_estimate(cut) >= result.back_pages  # the real constant errs on the high side
