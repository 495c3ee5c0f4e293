"""HTML book → print PDF with WeasyPrint, with exact page numbers in the contents and index.

The book's three parts are laid out separately: body first (its page numbers start at 1 on a
recto page), so the anchors' pages are known; then the front matter with those numbers written
literally in the table of contents (roman page numbers of its own), then the index starting on
the page after the body. The laid-out pages are joined into one document — internal links and
bookmarks resolve across parts — and written once. No `target-counter`, so nothing is laid out
twice.
"""

from __future__ import annotations

import html as html_lib
import re
import time
from pathlib import Path

import pydyf
from weasyprint import CSS
from weasyprint.text.fonts import FontConfiguration

from pdfgen_pipeline.render import contents, heads, imposition, stamps
from pdfgen_pipeline.render.fetcher import SandboxedURLFetcher
from pdfgen_pipeline.render.html import split_parts
from pdfgen_pipeline.render.layout_result import PdfResult
from pdfgen_pipeline.render.weasy import BookHTML, font_configuration

#: Image compression equivalent to the former Ghostscript /ebook step: 150 dpi, JPEG quality 80.
PDF_OPTIONS = {"optimize_images": True, "jpeg_quality": 80, "dpi": 150}

_PN = re.compile(r'<span class="pn" data-target="([^"]*)"></span>')
_PN_TARGETS = re.compile(r'<span class="pn" data-target="([^"]*)">')
_IX = re.compile(r'<span class="ix-pages" data-targets="([^"]*)">.*?</span>(?=</p>)', re.S)
_TERME = re.compile(r'<span class="terme">([^<]*)</span>')
_MARGIN_CLASSES = ("nmr", "corr-date")
_MM = 96 / 25.4  # CSS px per mm


def fill_toc_pages(front: str, pages: dict[str, int]) -> tuple[str, int]:
    """Write the printed page number of each TOC target; returns (html, targets not found)."""
    missing = 0

    def repl(m: re.Match[str]) -> str:
        nonlocal missing
        page = pages.get(m.group(1))
        missing += page is None
        return f'<span class="pn" data-target="{m.group(1)}">{"" if page is None else page}</span>'

    return _PN.sub(repl, front), missing


def fill_index_pages(back: str, pages: dict[str, int]) -> tuple[str, int]:
    """Replace each index entry's anchors by one link per distinct page, in page order;
    returns (html, anchors not found)."""
    missing = 0

    def repl(m: re.Match[str]) -> str:
        nonlocal missing
        first_on_page: dict[int, str] = {}
        for a in m.group(1).split():
            p = pages.get(a)
            missing += p is None
            if p is not None and p not in first_on_page:
                first_on_page[p] = a
        # plain text and the links only: every extra inline box costs layout time (≈ 3 s on C2.2's index)
        return ", ".join(f'<a href="#{html_lib.escape(a)}">{p}</a>' for p, a in sorted(first_on_page.items()))

    return _IX.sub(repl, _TERME.sub(r"\1", back)), missing


def _move_margin_notes(pages) -> None:
    """Put alinea numbers and correction dates in the outer margin: the right one on recto pages.

    They are laid out in the left margin (absolutely positioned, so moving them changes no
    other box); on right-hand pages they are translated past the right edge of the text block.
    """
    for page in pages:
        page_box = page._page_box
        if page_box.page_type.side != "right":
            continue
        right = page_box.content_box_x() + page_box.width
        for box in page_box.descendants():
            element = getattr(box, "element", None)
            if element is None or box.element_tag != "span" or not getattr(box, "is_absolutely_positioned", None):
                continue
            if not box.is_absolutely_positioned():
                continue
            classes = (element.get("class") or "").split()
            if not any(c in _MARGIN_CLASSES for c in classes):
                continue
            texts = [d for d in box.descendants() if type(d).__name__ == "TextBox"]
            left = min((t.position_x for t in texts), default=box.position_x)
            box.translate(dx=right + 3 * _MM - left)


def _page_labels(front_pages: int):
    """PDF page labels matching the printed numbers: i, ii, … for the front matter, then 1, 2, …"""

    def finisher(_document, pdf: pydyf.PDF) -> None:
        nums = pydyf.Array([0, pydyf.Dictionary({"S": "/r"})])
        nums.extend([front_pages, pydyf.Dictionary({"S": "/D", "St": 1})])
        pdf.catalog["PageLabels"] = pydyf.Dictionary({"Nums": nums})

    return finisher


def _blank_page(base_url: str, fonts: FontConfiguration, fetcher: SandboxedURLFetcher):
    """One empty A4 page (no running head, no number): pads the front matter to an even count."""
    return BookHTML("<html><body></body></html>", base_url, fetcher).render(
        font_config=fonts, stylesheets=[CSS(string="@page { size: A4 }")]).pages[0]


def _offset_css(first_page: int) -> CSS:
    """Number the first page of a part `first_page` (a reset page shows the reset value)."""
    return CSS(string=f"@page :first {{ counter-reset: page {first_page} }}")


def _tree_size(roots: list) -> int:
    return sum(1 + _tree_size(children) for _label, _target, children, _state in roots)


def _render_parallel(prefix: str, parts: dict[str, str], suffix: str, *, base_url: str, root: Path,
                     fonts: FontConfiguration, fetcher: SandboxedURLFetcher, out_pdf: Path, workers: int,
                     pdf_options: dict, seconds: dict[str, float]) -> PdfResult | None:
    """The body in `workers` processes, then the index in one of them while this process lays out
    the front matter (see `parallel.py`); None when the body cannot be cut."""
    from pdfgen_pipeline.render import parallel

    # more groups than processes, largest first: a process takes the next group when it finishes
    groups = parallel.split_body(parts["body"], 4 * workers,
                                 min_chars=min(parallel.MIN_GROUP_CHARS, len(parts["body"]) // (4 * workers)))
    if len(groups) < 2:
        return None
    with parallel.temp_dir(out_pdf.parent) as tmp_name, parallel.pool(min(workers, len(groups))) as pool:
        tmp = Path(tmp_name)
        t = time.perf_counter()

        def meanwhile():  # what this process lays out while the workers lay out the body
            folio = stamps.folio_places(parallel.folio_probe(prefix, suffix, base_url, fonts, fetcher))
            head_forms = heads.HeadForms.lay_out(prefix, suffix, parts["body"], base_url, fonts, fetcher,
                                                 tmp / "heads.pdf")
            # the front matter with a placeholder for each contents number (`contents.py`)
            t = time.perf_counter()
            placeholders = {a: contents.PLACEHOLDER for a in _PN_TARGETS.findall(parts["front"])}
            doc = BookHTML(prefix + fill_toc_pages(parts["front"], placeholders)[0] + suffix, base_url,
                           fetcher).render(font_config=fonts, stylesheets=[CSS(string=stamps.LEADERS_CSS)],
                                           **pdf_options)
            seconds["layout_front"] = round(time.perf_counter() - t, 3)
            tree = doc.make_bookmark_tree(scale=0.75, transform_pages=True)
            for p in doc.pages:
                p.bookmarks = []
            return folio, head_forms, doc, tree

        results, (places, head_forms, front, front_tree) = parallel.run_in_order(
            pool, parallel.body_jobs(groups, prefix, suffix, base_url, root, tmp, pdf_options), meanwhile)
        seconds["layout_body"] = round(time.perf_counter() - t, 3)
        seconds["body_groups"] = [r["seconds"] for r in results]
        anchor_pages: dict[str, int] = {}
        unnumbered: set[int] = set()
        assigned: list[str | None] = []  # chapter label set on each body page
        offsets = []
        n_body = 0
        for g, r in enumerate(results):
            offsets.append(n_body)
            for a, i in r["anchors"].items():
                anchor_pages.setdefault(a, n_body + i + 1)
            unnumbered.update(n_body + i for i in r["unnumbered"])
            assigned += r["labels"]
            n_body += r["pages"]
            if g < len(results) - 1 and r["pages"] % 2:  # the next group opens on a recto
                unnumbered.add(n_body)
                assigned.append(None)
                n_body += 1
        head_placements = [(i, label, i % 2 == 0) for i, label in enumerate(heads.running_labels(assigned))
                           if i not in unnumbered]

        # the index (in a worker) and the front matter (here) at the same time
        t = time.perf_counter()
        back_html, index_missing = fill_index_pages(parts["back"], anchor_pages)
        start = n_body + 1
        back_async = imposed = None
        cut = imposition.split_index(back_html) if 'class="index"' in back_html else None
        if cut is not None:  # the index's halves in the workers, framed here
            imposed = imposition.ImposedIndex(pool, cut, prefix=prefix, suffix=suffix, first_number=start,
                                              base_url=base_url, root=str(root), tmp=tmp, options=pdf_options,
                                              fonts=fonts, fetcher=fetcher)

        def whole_index():
            lead_blank = start % 2 == 0  # the index's first page is a verso: lay out a filler recto first
            html = parallel.verso_start(back_html) if lead_blank else back_html
            return pool.apply_async(parallel.lay_out_part, ({
                "html": prefix + html + suffix, "base_url": base_url, "root": str(root),
                "out": str(tmp / "back.pdf"), "options": pdf_options, "css": [f"@page :first {{ counter-reset: page "
                                                      f"{start - 1 if lead_blank else start} }}"],
                "drop_first": lead_blank},))

        if cut is None and 'class="index"' in back_html:
            back_async = whole_index()
        # contents entries pointing into the index (its title) are on its first page; checked below
        back_targets = {a: start for a in _PN_TARGETS.findall(parts["front"]) if a not in anchor_pages}

        def finish_front(pages: dict[str, int]) -> int:
            """Write the contents numbers into the laid-out front matter, then write it; targets not found."""
            missing = contents.set_numbers(front.pages, pages)
            front_stamps[:] = stamps.leader_stamps(front.pages)
            parallel.mark_foreign_links(front.pages)
            front.write_pdf(tmp / "front.pdf", **pdf_options)  # while the index is being laid out
            return missing

        front_stamps: list[stamps.Stamp] = []
        toc_missing = finish_front({**anchor_pages, **back_targets})
        body_stamps = [places.stamp(i, i + 1) for i in range(n_body) if i not in unnumbered]
        body_stamps += [s.moved(offsets[g]) for g, r in enumerate(results) for s in r["stamps"]]

        def join() -> parallel.Assembly:
            return parallel.Assembly(tmp / "front.pdf", len(front.pages) % 2 == 1, results, body_stamps,
                                     front_stamps, head_forms, head_placements)

        assembly = join()  # while the index is laid out
        back = imposed.collect() if imposed is not None else None
        if imposed is not None and back is None:
            back_async = whole_index()
        if back_async is not None:
            back = back_async.get()
        back_tree: list = []
        if back is not None:
            seconds["layout_back"] = back["seconds"]["layout"]
            if "columns" in back:  # imposed: how many columns the halves made
                seconds["index_columns"] = back["columns"]
            for a, i in back["anchors"].items():
                anchor_pages.setdefault(a, start + i)
            back_tree = back["bookmarks"]
            if any(anchor_pages.get(a) != p for a, p in back_targets.items()):
                # not on the index's first page after all
                assembly.close()
                toc_missing = finish_front(anchor_pages)
                assembly = join()
        seconds["front_and_index"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        front_pages = len(front.pages) + len(front.pages) % 2
        trees = [(0, front_tree), *((front_pages + offsets[g], r["bookmarks"]) for g, r in enumerate(results)),
                 (front_pages + n_body, back_tree)]
        pages = assembly.finish(out_pdf, back["pdf"] if back else None, trees)
        seconds["assemble"] = round(time.perf_counter() - t, 3)
    for r in [*results, *([back] if back else [])]:
        fetcher.refusals.extend(tuple(x) for x in r["refusals"])
    return PdfResult(pages=pages, front_pages=front_pages, body_pages=n_body,
                     back_pages=back["pages"] if back else 0, anchor_pages=anchor_pages, seconds=seconds,
                     refused_urls=list(fetcher.refusals), bytes=out_pdf.stat().st_size, toc_unresolved=toc_missing,
                     index_unresolved=index_missing, bookmarks=sum(_tree_size(tree) for _offset, tree in trees))


#: Bodies smaller than this (about 6 pages) are laid out in one process. Above, the long-book path is faster
#: on 2 CPUs (its stamped notes, numbers and running heads cost less than WeasyPrint's own): the 24-page c99
#: sample 3.2 s → 1.7 s, a 54-page synthetic ouvrage 5.9 s → 2.9 s; the 12-page g9 takes the same time either way.
PARALLEL_MIN_BODY_CHARS = 30_000


def default_workers() -> int:
    """Processes for a long body: the CPUs this process may use, at most 4 (`PDFGEN_RENDER_WORKERS` overrides)."""
    import os

    if os.environ.get("PDFGEN_RENDER_WORKERS"):
        return max(1, int(os.environ["PDFGEN_RENDER_WORKERS"]))
    return max(1, min(4, len(os.sched_getaffinity(0))))


def render_pdf(html_path: Path, out_pdf: Path, *, sandbox_root: Path | None = None,
               font_config: FontConfiguration | None = None, options: dict | None = None,
               workers: int | None = None, min_parallel_chars: int = PARALLEL_MIN_BODY_CHARS) -> PdfResult:
    """Lay out the book in `html_path` and write `out_pdf`. Resources come only from `sandbox_root`.
    A long body is laid out by `workers` processes (default: `default_workers()`)."""
    html_path = Path(html_path)
    root = Path(sandbox_root or html_path.parent)
    fetcher = SandboxedURLFetcher(root)
    fonts = font_config or font_configuration()
    base_url = html_path.resolve().as_uri()
    prefix, parts, suffix = split_parts(html_path.read_text(encoding="utf-8"))
    continuous = 'class="continu"' in prefix
    seconds: dict[str, float] = {}
    pdf_options = {**PDF_OPTIONS, **(options or {})}
    workers = default_workers() if workers is None else workers
    if workers > 1 and not continuous and len(parts["body"]) >= min_parallel_chars:
        out_pdf.parent.mkdir(parents=True, exist_ok=True)
        result = _render_parallel(prefix, parts, suffix, base_url=base_url, root=root, fonts=fonts,
                                  fetcher=fetcher, out_pdf=out_pdf, workers=workers, pdf_options=pdf_options,
                                  seconds=seconds)
        if result is not None:
            return result

    def layout(name: str, part: str, css: list[CSS] | None = None):
        t = time.perf_counter()
        doc = BookHTML(prefix + part + suffix, base_url, fetcher).render(
            font_config=fonts, stylesheets=css or [], **pdf_options)
        seconds[f"layout_{name}"] = round(time.perf_counter() - t, 3)
        return doc

    body = layout("body", parts["body"])
    anchor_pages = {a: i + 1 for i, p in enumerate(body.pages) for a in p.anchors}
    n_body = len(body.pages)

    back_html, index_missing = fill_index_pages(parts["back"], anchor_pages)
    has_back = 'class="index"' in back_html
    back_pages: list = []
    if has_back:
        # the index starts on the page after the body; a verso start needs a leading blank recto, dropped
        start = n_body + 1
        lead_blank = start % 2 == 0
        if lead_blank:
            back_html = back_html.replace('<div class="part back">',
                                          '<div class="part back"><div style="break-after: page"></div>', 1)
        back = layout("back", back_html, [_offset_css(start - 1 if lead_blank else start)])
        back_pages = back.pages[1:] if lead_blank else back.pages
        for i, p in enumerate(back_pages):
            for a in p.anchors:
                anchor_pages.setdefault(a, start + i)

    front_html, toc_missing = fill_toc_pages(parts["front"], anchor_pages)
    front = layout("front", front_html)

    front_pages = list(front.pages)
    if len(front_pages) % 2:  # page 1 of the body must be a recto in the printed book
        front_pages.append(_blank_page(base_url, fonts, fetcher))
    all_pages = [*front_pages, *body.pages, *back_pages]
    _move_margin_notes([*body.pages, *back_pages])
    combined = body.copy(all_pages)
    t = time.perf_counter()
    out_pdf.parent.mkdir(parents=True, exist_ok=True)
    combined.write_pdf(out_pdf, finisher=_page_labels(len(front_pages)), **pdf_options)
    seconds["write"] = round(time.perf_counter() - t, 3)
    return PdfResult(pages=len(all_pages), front_pages=len(front_pages), body_pages=n_body,
                     back_pages=len(back_pages), anchor_pages=anchor_pages, seconds=seconds,
                     refused_urls=list(fetcher.refusals), bytes=out_pdf.stat().st_size,
                     toc_unresolved=toc_missing if not continuous else 0, index_unresolved=index_missing,
                     bookmarks=sum(len(p.bookmarks) for p in all_pages))
