"""The index of a long book laid out by several processes: columns imposed two to a page.

The index is the last part to lay out (its page numbers come from the body) and the longest after
the body (C2.2: 1,282 entries, 12 pages). Laid out as one two-column document it takes one process;
here its letter groups are cut in halves (`split_index`) and each half is laid out as pages of one
column (`COLUMN_CSS`, `column_html`) by its own process, at the same time. The parent then lays out the
frame of the index pages — running heads, footer numbers, the title "Index" — and places the columns
on them in order, two to a page (`impose`), links included. A half starts at the top of a column.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import pikepdf

MM_PX = 96 / 25.4
PX_PT = 0.75
#: The body's text block (210 mm − 20 mm − 27 mm) holds two columns 8 mm apart, as `book.css` sets them.
TEXT_WIDTH_MM = 163.0
GAP_MM = 8.0
COLUMN_WIDTH_MM = (TEXT_WIDTH_MM - GAP_MM) / 2
TEXT_HEIGHT_MM = 297.0 - 22.0 - 20.0
_LETTER = '<h2 class="index-lettre"'
#: An index whose entries are shorter than this per process (about 4 columns) is laid out whole.
MIN_PART_CHARS = 20_000
_ITEMS_OPEN = '<div class="index-items">'


@dataclass(frozen=True)
class IndexParts:
    """The index part of the book cut for imposition: the frame (title, no entries) and the halves' items."""

    frame: str  # the back part without its entries
    halves: list[str]  # runs of letter groups, in order


def split_index(back: str, parts: int = 2, min_chars: int | None = None) -> IndexParts | None:
    """Cut the index's letter groups into `parts` runs of about the same size; None when it is too small to
    be worth it or has no letter groups."""
    start = back.find(_ITEMS_OPEN)
    if start < 0:
        return None
    start += len(_ITEMS_OPEN)
    end = back.index("</div>\n</section>", start)
    items = back[start:end]
    cuts = [m.start() for m in re.finditer(re.escape(_LETTER), items)]
    if len(cuts) < parts or len(items) < (MIN_PART_CHARS if min_chars is None else min_chars) * parts:
        return None
    bounds = [0]
    for k in range(1, parts):
        target = len(items) * k / parts
        bounds.append(min(cuts, key=lambda c: abs(c - target)))
    bounds.append(len(items))
    halves = [items[a:b] for a, b in itertools.pairwise(bounds) if b > a]
    return IndexParts(frame=back[:start] + back[end:], halves=halves)


#: Fewer HTML characters than a column of entries holds (C2.2: about 4,100), for the frame's page estimate.
CHARS_PER_COLUMN = 3000


def frame_pages_estimate(cut: IndexParts) -> int:
    """Index pages likely enough for the halves' columns (two to a page), erring on the high side."""
    return -(-sum(len(h) for h in cut.halves) // (2 * CHARS_PER_COLUMN)) + 1


def column_css(first_height_mm: float | None) -> str:
    """Pages of one index column; the first two shorter when they go under the index's title."""
    # stylesheets given to `render` are the user's: `!important` to win over book.css
    css = (f"@page colonne {{ size: {COLUMN_WIDTH_MM}mm {TEXT_HEIGHT_MM}mm !important; margin: 0 !important }}"
           " .part.back.colonnes { page: colonne !important } .colonnes .index { columns: auto !important }")
    if first_height_mm is not None:
        css += "".join(f" @page colonne:nth({n}) {{ size: {COLUMN_WIDTH_MM}mm {first_height_mm:.3f}mm !important }}"
                       for n in (1, 2))
    return css


def column_html(prefix: str, suffix: str, items: str) -> str:
    """One half of the index's entries, as a document of column pages."""
    return (prefix + '<div class="part back colonnes"><section class="index"><div class="index-items">' + items
            + "</div></section></div>" + suffix)


def frame_html(frame: str, pages: int) -> str:
    """The index part with its title and no entries, on `pages` pages (running heads and numbers)."""
    breaks = '<div style="break-before: page"></div>' * (pages - 1)
    return frame.replace("</section>", "</section>" + breaks, 1)


def title_bottom_mm(frame_pages) -> float:
    """How far below the top of the first page's text block the index title ends (its bottom margin included)."""
    page = frame_pages[0]._page_box
    title = next(b for b in page.descendants()
                 if b.element is not None and "index-titre" in (b.element.get("class") or "").split())
    bottom = title.position_y + title.margin_height()
    return (bottom - page.content_box_y()) / MM_PX


def impose(frame_pdf: pikepdf.Pdf, frame_pages, columns: list[tuple[pikepdf.Pdf, int]], first_height_mm: float,
           ) -> None:
    """Place `columns` (pdf, page index) on the frame's pages in order, two to a page, under the title on the
    first page; their link annotations are moved with them."""
    for i, (src, index) in enumerate(columns):
        page_no, side = divmod(i, 2)
        box = frame_pages[page_no]._page_box
        height_pt = box.margin_height() * PX_PT
        x = (box.content_box_x() + side * (COLUMN_WIDTH_MM + GAP_MM) * MM_PX) * PX_PT
        top = box.content_box_y() * PX_PT + (0 if page_no else (TEXT_HEIGHT_MM - first_height_mm) * MM_PX * PX_PT)
        column = src.pages[index]
        width = float(column.mediabox[2]) - float(column.mediabox[0])
        col_height = float(column.mediabox[3]) - float(column.mediabox[1])
        y = height_pt - top - col_height
        target = frame_pdf.pages[page_no]
        target.add_overlay(column, pikepdf.Rectangle(x, y, x + width, y + col_height))
        for annot in column.obj.get("/Annots", []):
            copy = frame_pdf.copy_foreign(annot)
            x1, y1, x2, y2 = (float(v) for v in copy.Rect)
            copy.Rect = [x1 + x, y1 + y, x2 + x, y2 + y]
            if "/P" in copy:
                del copy["/P"]
            if "/Annots" not in target.obj:
                target.obj.Annots = frame_pdf.make_indirect(pikepdf.Array())
            target.obj.Annots.append(copy)


def _frame_doc(prefix: str, suffix: str, frame: str, pages: int, first_number: int, base_url: str, fonts,
               fetcher):
    """The laid-out frame pages (the leading parity filler dropped)."""
    from weasyprint import CSS

    from pdfgen_pipeline.render.parallel import verso_start
    from pdfgen_pipeline.render.weasy import BookHTML

    lead_blank = first_number % 2 == 0  # a verso first: lay out a filler recto before it
    html = verso_start(frame_html(frame, pages)) if lead_blank else frame_html(frame, pages)
    css = CSS(string=f"@page :first {{ counter-reset: page {first_number - 1 if lead_blank else first_number} }}")
    doc = BookHTML(prefix + html + suffix, base_url, fetcher).render(font_config=fonts, stylesheets=[css])
    return doc.copy(doc.pages[1:]) if lead_blank else doc


class ImposedIndex:
    """The index laid out as columns by two pool workers, then framed and imposed here (`collect`)."""

    def __init__(self, pool, cut: IndexParts, *, prefix: str, suffix: str, first_number: int, base_url: str,
                 root: str, tmp, options: dict, fonts, fetcher):
        from pdfgen_pipeline.render.parallel import lay_out_part

        self.cut, self.prefix, self.suffix, self.first_number = cut, prefix, suffix, first_number
        self.base_url, self.fonts, self.fetcher, self.tmp, self.options = base_url, fonts, fetcher, tmp, options

        def job(i: int, css: str) -> dict:
            return {"html": column_html(prefix, suffix, cut.halves[i]), "base_url": base_url, "root": root,
                    "out": str(tmp / f"index{i}.pdf"), "options": options, "css": [css]}

        later = [pool.apply_async(lay_out_part, (job(i, column_css(None)),)) for i in range(1, len(cut.halves))]
        # the first columns go under the title: its height, from a one-page frame, before they are laid out
        probe = _frame_doc(prefix, suffix, cut.frame, 1, first_number, base_url, fonts, fetcher)
        self.first_height = TEXT_HEIGHT_MM - title_bottom_mm(probe.pages)
        self.pending = [pool.apply_async(lay_out_part, (job(0, column_css(self.first_height)),)), *later]

    def collect(self) -> dict:
        """Wait for the columns, frame them; what `parallel.lay_out_part` returns for the index, or None when the
        first half is too short to fill the title page's two columns (then lay the index out whole)."""
        # the frame while the columns are laid out, on more pages than they will likely fill (trimmed after)
        frame = _frame_doc(self.prefix, self.suffix, self.cut.frame, frame_pages_estimate(self.cut),
                           self.first_number, self.base_url, self.fonts, self.fetcher)
        results = [p.get() for p in self.pending]
        if results[0]["pages"] < 2:
            return None
        columns = sum(r["pages"] for r in results)
        if len(frame.pages) >= (columns + 1) // 2:
            frame = frame.copy(frame.pages[:(columns + 1) // 2])
        else:
            frame = _frame_doc(self.prefix, self.suffix, self.cut.frame, (columns + 1) // 2, self.first_number,
                               self.base_url, self.fonts, self.fetcher)
        out = self.tmp / "back.pdf"
        frame.write_pdf(out, **self.options)
        tree = frame.make_bookmark_tree(scale=0.75, transform_pages=True)
        with pikepdf.open(out, allow_overwriting_input=True) as pdf:
            sources = [pikepdf.open(r["pdf"]) for r in results]
            impose(pdf, frame.pages, [(src, i) for src in sources for i in range(len(src.pages))],
                   self.first_height)
            pdf.save(out)
            for src in sources:
                src.close()
        anchors: dict[str, int] = {}
        for i, p in enumerate(frame.pages):
            for a in p.anchors:
                anchors.setdefault(a, i)
        return {"pages": len(frame.pages), "anchors": anchors, "pdf": str(out), "bookmarks": tree, "stamps": [],
                "refusals": [x for r in results for x in r["refusals"]] + list(self.fetcher.refusals),
                "columns": columns,
                "seconds": {"layout": round(sum(r["seconds"]["layout"] for r in results), 3),
                            "columns": [r["seconds"] for r in results]}}
