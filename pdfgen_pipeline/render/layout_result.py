"""What the layout of a book reports back: a module of its own, light to import (no WeasyPrint), so that the
process that receives it from the render child does not import the layout's libraries."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PdfResult:
    """What the PDF step produced and learnt."""

    pages: int
    front_pages: int
    body_pages: int
    back_pages: int
    anchor_pages: dict[str, int]  # anchor → printed page number (body and back)
    seconds: dict[str, float] = field(default_factory=dict)
    refused_urls: list[tuple[str, str]] = field(default_factory=list)
    bytes: int = 0
    toc_unresolved: int = 0  # TOC entries whose title was not found in the layout
    index_unresolved: int = 0  # index references whose term was not found in the layout
    bookmarks: int = 0
