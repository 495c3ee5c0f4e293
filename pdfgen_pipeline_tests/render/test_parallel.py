"""The multi-process path (body cut between chapters, PDF assembled with pikepdf) gives the same book."""

import re
from html import unescape

import pikepdf

from pdfgen_pipeline.render.parallel import schedule, split_body
from pdfgen_pipeline_tests.pdfcheck import (
    bookmarks,
    index_problems,
    links,
    page_texts,
    printed_page_numbers,
    toc_problems,
    word_coverage,
)


def test_split_body_keeps_every_chapter_once():
    body = ('<!-- pdfgen:part body -->\n<div class="part body">\n<p class="running-ouvrage">IN C99</p>\n'
            '<div class="plan">plan</div>\n' + "".join(f'<section class="chapitre niveau1">ch{i}</section>\n'
                                                         for i in range(5)) + '</div>\n<!-- pdfgen:end body -->')
    groups = split_body(body, 3, min_chars=0)
    assert len(groups) == 3
    assert "plan" in groups[0] and all("plan" not in g for g in groups[1:])
    assert all(g.startswith("<!-- pdfgen:part body -->") and 'class="running-ouvrage"' in g for g in groups)
    assert [m for g in groups for m in re.findall(r"ch\d", g)] == [f"ch{i}" for i in range(5)]


def test_split_body_merges_small_chapters_with_their_smaller_neighbour():
    sizes = [5, 200, 40, 300, 3]
    body = ('<!-- pdfgen:part body -->\n<div class="part body">\n<p class="running-ouvrage">IN</p>\n'
            + "".join(f'<section class="chapitre niveau1">ch{i}:{"x" * n}</section>' for i, n in enumerate(sizes))
            + '</div>\n<!-- pdfgen:end body -->')
    groups = split_body(body, 10, min_chars=100)
    assert [re.findall(r"ch(\d)", g) for g in groups] == [["0", "1", "2"], ["3", "4"]]
    assert [re.findall(r"ch(\d)", g) for g in split_body(body, 10, min_chars=0)] == [[str(i)] for i in range(5)]
    assert len(split_body(body, 2, min_chars=0)) == 2


def test_largest_jobs_are_handed_out_first():
    assert schedule([10, 300, 40, 300, 5]) == [1, 3, 2, 0, 4]


def test_parallel_book_has_exact_toc_index_links_and_bookmarks(parallel_c99, referentiel):
    out, pdf, result = parallel_c99
    assert "body_groups" in result.seconds  # the multi-process path was taken
    assert "index_columns" not in result.seconds  # a small index is laid out whole
    assert result.toc_unresolved == 0 and result.index_unresolved == 0
    checked, problems = toc_problems(pdf, result.front_pages)
    assert checked >= 40 and problems == []
    html = (out / "document.html").read_text("utf-8")
    terms = [unescape(t) for t in re.findall(r'<span class="terme">([^<]+)</span>', html)]
    index_pages = list(range(result.pages - result.back_pages, result.pages))
    checked, problems = index_problems(pdf, index_pages, terms)
    assert checked >= len(terms) and problems == []
    marks = bookmarks(pdf)
    assert len(marks) == result.bookmarks == len(re.findall(r'class="titre( modifie)?"', html)) + 2
    assert all(page is not None for _level, _title, page in marks)
    coverage, missing = word_coverage(referentiel / "c99" / "xml" / "document.xml", pdf)
    assert coverage >= 0.999, missing.most_common(5)
    lks = links(pdf)
    assert not [lk.uri for lk in lks if lk.uri and lk.uri.startswith("pdfgen-anchor:")]
    assert any(lk.uri and lk.uri.startswith("mailto:") for lk in lks)


def test_parallel_book_numbers_labels_and_metadata(parallel_c99, single_c99):
    _out, pdf, result = parallel_c99
    single = single_c99[1]
    # same pages as the one-process layout: no page lost or added where the groups meet
    assert (result.front_pages, result.body_pages, result.back_pages) == (
        single.front_pages, single.body_pages, single.back_pages)
    printed = printed_page_numbers(pdf)
    assert printed == printed_page_numbers(_out / "document.pdf")  # page for page, the one-process numbers
    texts = page_texts(pdf)
    with pikepdf.open(pdf) as p:
        # every portrait page with text prints its own number (a landscape page has a page style of its own,
        # without running head nor number, in both layouts)
        portrait = [i for i in range(result.front_pages, result.pages) if texts[i].strip()
                    and float(p.pages[i].mediabox[2]) < float(p.pages[i].mediabox[3])]
        assert len(portrait) >= result.body_pages - 4
        assert [printed[i] for i in portrait] == [str(i - result.front_pages + 1) for i in portrait]
        assert p.Root.PageLabels.Nums[2] == result.front_pages
        assert str(p.Root.Lang) == "fr"
        assert str(p.docinfo["/Title"]).startswith("Instructions nautiques C99")


def test_books_over_a_few_pages_take_the_long_book_path(rendered):
    from pdfgen_pipeline.render.pdf import default_workers

    def seconds(key: str) -> dict:
        return rendered[key][1]["documents"][0]["layout_seconds"]

    # c99 (24 pages) is laid out by the workers when there are CPUs for them; g9 (12 pages) in one process
    assert ("body_groups" in seconds("c99")) == (default_workers() > 1)
    assert "body_groups" not in seconds("g9") and "layout_body" in seconds("g9")
