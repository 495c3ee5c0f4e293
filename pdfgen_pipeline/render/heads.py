"""Running heads of the long-book path: laid out once per chapter and page side, overlaid on the body's pages.

A body page's running head shows two strings (`book.css`: `string(ouvrage)`, the same on every page,
and `string(chapitre)`, the label of the chapter), in margin boxes that WeasyPrint lays out and draws
again on every page: a sixth of the body's layout and writing. The body's groups are laid out without
them (`HEADLESS_CSS`); each group tells on which pages a chapter title starts (`assigned_labels`); the
parent lays out one recto and one verso per chapter with nothing but their running heads
(`HeadForms.lay_out`), while the groups are laid out, and draws that page as a Form XObject on each
body page that shows it (`HeadForms.overlay`). The heads are WeasyPrint's own boxes, wrapping and fonts
included; `pdfgen_pipeline_tests/render/test_heads.py` checks them against the one-process layout.
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass
from pathlib import Path

import pikepdf

#: Given to WeasyPrint with the body's groups: no running heads (overlaid after assembly).
HEADLESS_CSS = "".join(f"@page corps:{side} {{ @top-left {{ content: none !important }} "
                       f"@top-right {{ content: none !important }} }} " for side in ("right", "left"))
#: The probe's pages: each `.np` on its own page, setting the chapter string as `h1.titre` does in `book.css`.
_PROBE_CSS = (".np { string-set: chapitre attr(data-label) !important } .np + .np { break-before: page !important }"
              "".join(f" @page corps:{side} {{ @bottom-{pos} {{ content: none !important }} }}"
                      for side, pos in (("right", "right"), ("left", "left"))))
_CHAPTER_TITLE = re.compile(r'<h1 [^>]*class="titre"[^>]*>')
_LABEL = re.compile(r'data-label="([^"]*)"')
_RUNNING = re.compile(r'<p class="running-ouvrage">.*?</p>', re.S)


def chapter_labels(body: str) -> list[str]:
    """The distinct chapter labels of the body part's HTML (`h1.titre` data-label, unescaped), "" first (the
    pages before the first chapter)."""
    labels = [""]
    for tag in _CHAPTER_TITLE.findall(body):
        m = _LABEL.search(tag)
        label = html_lib.unescape(m.group(1)) if m else ""
        if label not in labels:
            labels.append(label)
    return labels


def assigned_labels(root, pages) -> list[str | None]:
    """For each laid-out page, the label of the first chapter title that starts on it, or None."""
    by_id = {el.get("id"): el.get("data-label") or "" for el in root.iter("h1")
             if el.get("id") and "titre" in (el.get("class") or "").split()}
    out: list[str | None] = []
    for page in pages:
        out.append(next((by_id[a] for a in page.anchors if a in by_id), None))
    return out


def running_labels(assigned: list[str | None]) -> list[str]:
    """What `string(chapitre)` (its `first` value) prints on each page: the label assigned on the page, else the
    last one assigned before it, else ""."""
    current, out = "", []
    for label in assigned:
        current = current if label is None else label
        out.append(current)
    return out


@dataclass
class HeadForms:
    """A PDF of head-only pages: a recto then a verso for each chapter label."""

    pdf_path: Path
    index: dict[tuple[str, bool], int]  # (label, recto) → page of `pdf_path`

    @classmethod
    def lay_out(cls, prefix: str, suffix: str, body: str, base_url: str, fonts, fetcher, out: Path) -> HeadForms:
        """Lay out and write the head pages of the body part `body` (HTML) to `out`."""
        from weasyprint import CSS

        from pdfgen_pipeline.render.weasy import BookHTML

        labels = chapter_labels(body)
        running = _RUNNING.search(body)
        pages = "".join(f'<div class="np" data-label="{html_lib.escape(label)}"></div>' * 2 for label in labels)
        html = (prefix + '<div class="part body">' + (running.group(0) if running else "") + pages + "</div>"
                + suffix)
        doc = BookHTML(html, base_url, fetcher).render(font_config=fonts, stylesheets=[CSS(string=_PROBE_CSS)])
        if len(doc.pages) != 2 * len(labels):
            raise RuntimeError(f"running-head probe: {len(doc.pages)} pages laid out for {len(labels)} labels")
        doc.write_pdf(out)
        return cls(out, {(label, recto): 2 * i + (0 if recto else 1)
                         for i, label in enumerate(labels) for recto in (True, False)})

    def overlay(self, pdf: pikepdf.Pdf, source: pikepdf.Pdf, placements: list[tuple[int, str, bool]]) -> int:
        """Draw on page `p` of `pdf` the head of (label, recto), for each (p, label, recto); returns how many.
        `source` is `pdf_path` opened, kept open until `pdf` is saved. One Form XObject per head page, shared by
        the pages that show it (and one name for it in resources that WeasyPrint shares between pages)."""
        forms: dict[int, pikepdf.Object] = {}
        for page_index, label, recto in placements:
            k = self.index[(label, recto)]
            if k not in forms:  # a head page is the size of a body page: drawn as is
                forms[k] = pdf.copy_foreign(source.pages[k].as_form_xobject())
            page = pdf.pages[page_index]
            xobjects = page.obj.get("/Resources", {}).get("/XObject", {})
            name = next((n for n, x in xobjects.items() if x.objgen == forms[k].objgen), None)
            if name is None:
                name = page.add_resource(forms[k], pikepdf.Name.XObject, prefix="PdfgenHead")
            page.contents_add(pikepdf.Stream(pdf, b"q"), prepend=True)
            page.contents_add(pikepdf.Stream(pdf, b"Q q %s Do Q" % pikepdf.Name(name).unparse()))
        return len(placements)
