"""Stamped margin notes and footer numbers print where WeasyPrint's own layout prints them."""

from __future__ import annotations

import re

import pdfplumber
import pikepdf
import pytest

from pdfgen_pipeline.render.html import _Builder
from pdfgen_pipeline.render.pdf import render_pdf
from pdfgen_pipeline.render.stamps import STYLES, metrics, stampable

SIZES = {round(s.size, 1): kind for kind, s in STYLES.items()}


def _small_words(pdf_path, first: int, last: int) -> dict[int, list[tuple]]:
    """Page → the margin notes and footer numbers on it: (text, size, x0, x1, baseline), sorted."""
    out = {}
    with pdfplumber.open(pdf_path) as pdf:
        for i in range(first, last):
            page = pdf.pages[i]
            words = page.extract_words(extra_attrs=["size", "fontname"], keep_blank_chars=False)
            out[i] = sorted((w["text"], round(w["size"], 1), w["x0"], w["x1"], w["bottom"]) for w in words
                            if (round(w["size"], 1) in SIZES and "Bold" not in w["fontname"]) or
                            (round(w["size"], 1) == 8.5 and w["top"] > page.height - 60))
    return out


def test_stamped_notes_and_numbers_match_the_one_process_layout(parallel_c99, single_c99):
    out, pdf, result = parallel_c99
    single = out / "document.pdf"  # one process: every note laid out by WeasyPrint
    assert "body_groups" in result.seconds and single_c99[1].pages == result.pages
    first, last = result.front_pages, result.front_pages + result.body_pages
    ours, theirs = _small_words(pdf, first, last), _small_words(single, first, last)
    compared = 0
    for page in range(first, last):
        assert [w[:2] for w in ours[page]] == [w[:2] for w in theirs[page]], page
        for a, b in zip(ours[page], theirs[page], strict=True):
            assert abs(a[2] - b[2]) < 0.6 and abs(a[3] - b[3]) < 0.6 and abs(a[4] - b[4]) < 0.6, (page, a, b)
            compared += 1
    kinds = {w[1] for words in ours.values() for w in words}
    assert compared >= 60 and kinds == {7.0, 5.5, 8.5}, (compared, kinds)


def test_stamp_fonts_are_embedded_subsets(parallel_c99):
    _out, pdf_path, _result = parallel_c99
    seen = set()
    with pikepdf.open(pdf_path) as pdf:
        for page in pdf.pages:
            for name, font in page.Resources.get("/Font", {}).items():
                if name.startswith("/PdfgenStamp"):
                    assert font.Subtype == "/TrueType" and font.Encoding == "/WinAnsiEncoding"
                    assert "/FontFile2" in font.FontDescriptor and re.match(r"/[A-Z]{6}\+", str(font.BaseFont))
                    seen.add(str(font.BaseFont).split("+")[1])
    assert seen == {"LiberationSans", "LiberationSans-Bold"}


def test_text_outside_winansi_keeps_its_laid_out_span(rendered, tmp_path):
    out, _report = rendered["c99"]
    html = (out / "document.html").read_text("utf-8")
    marked = re.search(r'<(?:p|div) class="alinea( maj-[a-z]+)"[^>]*><span class="nmr tampon">(\d+)</span>', html)
    assert marked
    changed = html.replace(marked.group(0), marked.group(0).replace('class="alinea', 'class="alinea marge')
                           .replace(f'<span class="nmr tampon">{marked.group(2)}', '<span class="nmr">Ω7'), 1)
    (out / "omega.html").write_text(changed, "utf-8")
    try:
        result = render_pdf(out / "omega.html", tmp_path / "omega.pdf", sandbox_root=out, workers=2,
                            min_parallel_chars=0)
    finally:
        (out / "omega.html").unlink()
    assert "body_groups" in result.seconds
    words = _small_words(tmp_path / "omega.pdf", result.front_pages, result.front_pages + result.body_pages)
    assert [w for page in words.values() for w in page if w[0] == "Ω7"]


def test_stampable_and_builder():
    assert stampable("07") and stampable("2021-09-15") and stampable("12 bis é")
    assert not stampable("Ω7") and not stampable("") and not stampable("  ")
    assert _Builder.stamped("07", "modification", "2021-09-15")
    assert _Builder.stamped("", "edition", "")
    assert not _Builder.stamped("07", "modification", "2021—09—15\u2009")
    assert _Builder.stamped("07", "nouveau", "Ω")  # the date is printed for modifications only


def test_metrics_place_text_like_the_font():
    regular, bold = metrics(bold=False), metrics(bold=True)
    assert regular.width("0", 1000) == pytest.approx(556, abs=1)  # Liberation Sans: tabular figures
    assert regular.width("07", 7) == pytest.approx(2 * 0.556 * 7, abs=0.05)
    assert bold.width("8", 8.5) == pytest.approx(0.556 * 8.5, abs=0.05)
    assert 0 < regular.baseline(STYLES["date"]) < regular.baseline(STYLES["nmr"]) < 7 * 1.6


def test_contents_entries_get_dotted_leaders_and_end_with_their_number(parallel_c99):
    out, pdf_path, result = parallel_c99
    html = (out / "document.html").read_text("utf-8")
    entries = html.count('<a class="toc-entry')
    leaders = 0
    with pikepdf.open(pdf_path) as pdf:
        for page in list(pdf.pages)[:result.front_pages]:
            ops = pikepdf.parse_content_stream(page)
            leaders += sum(1 for _operands, op in ops if str(op) == "d")  # one dash pattern per leader
    assert entries >= 40 and entries * 0.9 <= leaders <= entries
    from pdfgen_pipeline_tests.pdfcheck import page_texts

    toc = next(t for t in page_texts(pdf_path)[:result.front_pages] if "Table des matières" in t)
    assert not re.search(r"\. \. \.", toc)  # the dots are drawn, not text
    assert re.search(r"\S+ \d+\s*$", toc.strip().splitlines()[1])  # a line reads "title number"
