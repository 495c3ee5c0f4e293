"""Quality checks on a rendered PDF, for the pipeline's asset checks (no Dagster here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pypdfium2 as pdfium

#: A page with fewer characters than this counts as "no text" (cover art, blank verso).
MIN_CHARS = 20


@dataclass
class PdfHealth:
    """What a reader's viewer would find: pages, text on them, problems."""

    pages: int = 0
    chars: int = 0
    pages_with_text: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def pdf_health(pdf_path: Path) -> PdfHealth:
    """Open the PDF with pdfium: it must open, have pages, and most pages must have selectable text."""
    h = PdfHealth()
    try:
        pdf = pdfium.PdfDocument(str(pdf_path))
    except (pdfium.PdfiumError, OSError) as exc:
        h.problems.append(f"{pdf_path.name}: does not open ({exc})")
        return h
    try:
        h.pages = len(pdf)
        for page in pdf:
            n = page.get_textpage().count_chars()
            h.chars += n
            h.pages_with_text += n >= MIN_CHARS
    finally:
        pdf.close()
    if h.pages == 0:
        h.problems.append(f"{pdf_path.name}: no page")
    elif h.pages_with_text < h.pages / 2:
        h.problems.append(f"{pdf_path.name}: only {h.pages_with_text} of {h.pages} pages have text")
    return h
