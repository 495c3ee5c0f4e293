"""Long books: the body laid out in several processes, the PDF assembled with pikepdf.

WeasyPrint lays a document out on one core. A long ouvrage's body is cut between chapters into
groups (chapters open on a recto, so a group's pages keep their sides wherever it lands); a pool
of processes lays out and writes the groups, largest first, without footer page numbers, margin
notes nor running heads, while the parent lays out the running heads once per chapter (`heads.py`)
and the front matter, a placeholder in each contents number. With the page of every anchor known, the
workers lay out the index (`imposition.py`) while the parent writes the contents numbers into the
laid-out front matter (`contents.py`); the parent then stamps the footer numbers and the groups' margin
notes (`stamps.py`), overlays the running heads, and rebuilds the named destinations, links between
parts, bookmarks and page labels of the joined PDF."""

from __future__ import annotations

import re
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pikepdf
from weasyprint import CSS
from weasyprint.text.fonts import FontConfiguration

from pdfgen_pipeline.render import heads, stamps
from pdfgen_pipeline.render.fetcher import SandboxedURLFetcher
from pdfgen_pipeline.render.weasy import BookHTML, font_configuration

#: Internal links to an anchor laid out by another process are written as this URI, then rewritten.
FOREIGN = "pdfgen-anchor:"
NO_NUMBERS_CSS = ("@page corps:right { @bottom-right { content: none !important } } "
                  "@page corps:left { @bottom-left { content: none !important } }")
_CHAPTER = '<section class="chapitre '
#: A group of chapters smaller than this (about 6 pages) is not worth a job of its own.
MIN_GROUP_CHARS = 30_000
A4 = (595.2756, 841.8898)
T = TypeVar("T")


def split_body(body: str, max_groups: int, min_chars: int = MIN_GROUP_CHARS) -> list[str]:
    """Cut the body part between chapters into at most `max_groups` groups of consecutive chapters:
    one per chapter, the smallest merged with their smaller neighbour while there are too many or one
    is under `min_chars`. Each group keeps the part's wrapper and running-head element (the plan of
    the book stays with the first group)."""
    first = body.find(_CHAPTER)
    end = body.rfind("</div>")
    if first < 0 or max_groups < 2:
        return [body]
    running = body.index('<p class="running-ouvrage"')
    wrapper = body[:running]  # part marker, <div class="part body">
    running_p = body[running:body.index("</p>", running) + 4]
    head, inner, tail = body[:first], body[first:end], body[end:]
    starts = [m.start() for m in re.finditer(re.escape(_CHAPTER), inner)]
    groups = [inner[a:b] for a, b in zip(starts, [*starts[1:], len(inner)], strict=True)]
    while len(groups) > 1:
        smallest = min(range(len(groups)), key=lambda i: len(groups[i]))
        if len(groups) <= max_groups and len(groups[smallest]) >= min_chars:
            break
        if smallest == 0:
            other = 1
        elif smallest == len(groups) - 1:
            other = smallest - 1
        else:
            other = min(smallest - 1, smallest + 1, key=lambda i: len(groups[i]))
        a, b = sorted((smallest, other))
        groups[a:b + 1] = [groups[a] + groups[b]]
    # in the other groups the running-head element goes inside the first chapter: before it, it would
    # sit alone on a page (the chapter breaks to a new recto)
    return [head + g + tail if i == 0 else wrapper + _inside_section(g, running_p) + tail
            for i, g in enumerate(groups)]


def _inside_section(group: str, element: str) -> str:
    cut = group.index(">") + 1
    return group[:cut] + element + group[cut:]


def verso_start(back: str) -> str:
    """The back part with a filler page first, dropped after layout: its first page is then a verso."""
    return back.replace('<div class="part back">', '<div class="part back"><div style="break-after: page"></div>', 1)


def schedule(sizes: list[int]) -> list[int]:
    """Order in which to hand jobs to the processes: largest first, so that no long job starts last."""
    return sorted(range(len(sizes)), key=lambda i: -sizes[i])


def mark_foreign_links(pages) -> None:
    """Keep internal links whose anchor is not in `pages` (WeasyPrint would drop them) as marked URIs."""
    own = {a for p in pages for a in p.anchors}
    for p in pages:
        p.links = [("external", FOREIGN + target, rect, box) if kind == "internal" and target not in own
                   else (kind, target, rect, box) for kind, target, rect, box in p.links]


def lay_out_part(job: dict) -> dict:
    """Worker: lay out and write one part of the book (a group of chapters, or the index).

    `job`: html, base_url, root (sandbox), out (PDF path), css (extra stylesheets, as strings),
    drop_first (the first page is a parity filler, not written), options (WeasyPrint's image options, read
    when the images are loaded), stamps (the margin notes are stamped: `stamps.STAMPED_CSS` given). Returns
    what the parent needs, the stamps with their page in this part."""
    from pdfgen_pipeline.render.pdf import _move_margin_notes

    options = job["options"]
    t = time.perf_counter()
    fetcher = SandboxedURLFetcher(Path(job["root"]))
    html = BookHTML(job["html"], job["base_url"], fetcher)
    doc = html.render(font_config=font_configuration(), stylesheets=[CSS(string=c) for c in job.get("css", [])],
                      **options)
    layout_s = time.perf_counter() - t
    if job.get("drop_first"):
        doc = doc.copy(doc.pages[1:])
    _move_margin_notes(doc.pages)
    notes = stamps.margin_stamps(html.etree_element, doc.pages) if job.get("stamps") else []
    labels = heads.assigned_labels(html.etree_element, doc.pages) if job.get("stamps") else []
    mark_foreign_links(doc.pages)
    bookmarks = doc.make_bookmark_tree(scale=0.75, transform_pages=True)
    for p in doc.pages:
        p.bookmarks = []
    doc.write_pdf(job["out"], **options)
    anchors: dict[str, int] = {}
    for i, p in enumerate(doc.pages):
        for a in p.anchors:
            anchors.setdefault(a, i)
    return {"pages": len(doc.pages), "anchors": anchors, "pdf": job["out"],
            # pages without a footer number: blank ones, and those of another page style (landscape)
            "unnumbered": [i for i, p in enumerate(doc.pages)
                           if p._page_box.page_type.blank or p._page_box.page_type.name != "corps"],
            "bookmarks": bookmarks, "refusals": fetcher.refusals, "stamps": notes, "labels": labels,
            "seconds": {"layout": round(layout_s, 3), "write": round(time.perf_counter() - t - layout_s, 3)}}


def body_jobs(groups: list[str], prefix: str, suffix: str, base_url: str, root: Path, tmp: Path,
              options: dict) -> list[dict]:
    """One job per group of chapters, laid out without footer page numbers, margin notes (stamped after
    assembly) nor running heads (overlaid)."""
    return [{"html": prefix + g + suffix, "base_url": base_url, "root": str(root), "out": str(tmp / f"body{i}.pdf"),
             "css": [NO_NUMBERS_CSS, heads.HEADLESS_CSS, stamps.STAMPED_CSS], "options": options, "stamps": True}
            for i, g in enumerate(groups)]


def pool(workers: int):
    """A pool of `workers` processes (forked from a single-threaded process, see `limits.process_context`),
    each killed by the kernel if this process dies (`limits.worker_init`)."""
    from pdfgen_pipeline.render.limits import process_context, worker_init

    return process_context().Pool(workers, initializer=worker_init)


def run_in_order(workers_pool, jobs: list[dict], meanwhile: Callable[[], T]) -> tuple[list[dict], T]:
    """Run `jobs` in the pool, largest first; results in the jobs' order, and what `meanwhile` returns: this
    process runs it, and reads the stamp fonts, while the pool works."""
    order = schedule([len(j["html"]) for j in jobs])
    pending = workers_pool.map_async(lay_out_part, [jobs[i] for i in order], chunksize=1)
    stamps.prepare_fonts()
    done = meanwhile()
    results = pending.get()
    out: list[dict] = [{}] * len(jobs)
    for i, r in zip(order, results, strict=True):
        out[i] = r
    return out, done


def folio_probe(prefix: str, suffix: str, base_url: str, fonts: FontConfiguration, fetcher: SandboxedURLFetcher):
    """A recto and a verso of the body's page style with nothing but their footer numbers: where
    `stamps.folio_places` reads the places of the numbers."""
    css = CSS(string=".np + .np { break-before: page }")
    return BookHTML(prefix + '<div class="part body"><div class="np"></div><div class="np"></div></div>' + suffix,
                    base_url, fetcher).render(font_config=fonts, stylesheets=[css]).pages


def _dests(pdf: pikepdf.Pdf) -> dict[str, tuple[int, list]]:
    """Named destinations of a PDF: name → (page index, [x, y, zoom])."""
    index = {p.obj.objgen: i for i, p in enumerate(pdf.pages)}
    out = {}
    if "/Names" in pdf.Root and "/Dests" in pdf.Root.Names:
        for name, dest in pikepdf.NameTree(pdf.Root.Names.Dests).items():
            if isinstance(dest, pikepdf.Dictionary):
                dest = dest.D
            page = index.get(dest[0].objgen)
            if page is not None:
                out[name] = (page, [float(v) if v is not None else 0 for v in list(dest)[2:5]])
    return out


class Assembly:
    """The joined PDF, built in two steps: front matter and body (`__init__`, while the index is laid out),
    then the index, destinations, links, bookmarks and page labels (`finish`)."""

    def __init__(self, front_pdf: Path, front_blank: bool, body: list[dict], body_stamps: list[stamps.Stamp],
                 front_stamps: list[stamps.Stamp] = (), head_forms: heads.HeadForms | None = None,
                 head_placements: list[tuple[int, str, bool]] = ()):
        """Join front matter and body groups, stamping the body's footer numbers and margin notes (`body_stamps`,
        pages counted from the body's first) and the contents' leaders (`front_stamps`), and overlaying the
        body's running heads (`head_placements`, pages counted from the body's first)."""
        self.final = final = pikepdf.open(front_pdf)
        self.sources = [(final, 0)]
        if front_blank:
            final.add_blank_page(page_size=A4)
        self.body_start = body_start = len(final.pages)
        self.parts: list[pikepdf.Pdf] = []
        for g, r in enumerate(body):
            part = pikepdf.open(r["pdf"])
            self.parts.append(part)
            self.sources.append((part, len(final.pages)))
            with warnings.catch_warnings():  # named destinations are rebuilt in `finish`
                warnings.simplefilter("ignore", pikepdf.PageCopyWarning)
                final.pages.extend(part.pages)
            if g < len(body) - 1 and len(part.pages) % 2:
                final.add_blank_page(page_size=A4)
        assert all(s.page < len(final.pages) - body_start for s in body_stamps)
        stamps.apply_stamps(final, body_stamps, first_page=body_start)
        stamps.apply_stamps(final, list(front_stamps))
        if head_forms is not None and head_placements:
            self.parts.append(head_source := pikepdf.open(head_forms.pdf_path))
            head_forms.overlay(final, head_source, [(body_start + p, label, recto)
                                                    for p, label, recto in head_placements])

    def finish(self, out_pdf: Path, back_pdf: Path | None, bookmark_trees: list[tuple[int, list]]) -> int:
        """Append the index, rebuild named destinations, links between parts, bookmarks and page labels, write
        `out_pdf`; returns the number of pages."""
        final = self.final
        if back_pdf is not None:
            back = pikepdf.open(back_pdf)
            self.parts.append(back)
            self.sources.append((back, len(final.pages)))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", pikepdf.PageCopyWarning)
                final.pages.extend(back.pages)
        # named destinations of every part, then links between parts
        tree = pikepdf.NameTree.new(final)
        for src, offset in self.sources:
            for name, (page, (x, y, zoom)) in _dests(src).items():
                tree[name] = pikepdf.Array([final.pages[offset + page].obj, pikepdf.Name.XYZ, x, y, zoom])
        final.Root.Names = pikepdf.Dictionary(Dests=tree.obj)
        for page in final.pages:
            for annot in page.obj.get("/Annots", []):
                action = annot.get("/A")
                if action is not None and str(action.get("/URI", "")).startswith(FOREIGN):
                    annot.Dest = pikepdf.String(str(action.URI)[len(FOREIGN):])
                    del annot["/A"]
        with final.open_outline() as outline:
            outline.root.clear()
            for offset, roots in bookmark_trees:
                outline.root.extend(_outline_items(final, roots, offset))
        final.Root.PageLabels = pikepdf.Dictionary(Nums=pikepdf.Array([
            0, pikepdf.Dictionary(S=pikepdf.Name.r), self.body_start, pikepdf.Dictionary(S=pikepdf.Name.D, St=1)]))
        final.save(out_pdf)
        pages = len(final.pages)
        self.close()
        return pages

    def close(self) -> None:
        for p in [*self.parts, self.final]:
            p.close()


def _outline_items(pdf: pikepdf.Pdf, roots: list, offset: int) -> list[pikepdf.OutlineItem]:
    items = []
    for label, (page, _x, y), children, state in roots:
        item = pikepdf.OutlineItem(label, offset + page, pikepdf.PageLocation.XYZ, top=y)
        item.is_closed = state == "closed"
        item.children.extend(_outline_items(pdf, children, offset))
        items.append(item)
    return items


def temp_dir(parent: Path) -> tempfile.TemporaryDirectory:
    """A scratch folder for the parts (beside the output)."""
    parent.mkdir(parents=True, exist_ok=True)
    return tempfile.TemporaryDirectory(prefix=".parts-", dir=parent)
