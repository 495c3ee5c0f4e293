"""Thumbnail `vignette.jpg`: page 1 of the PDF rendered at 150 dpi with pypdfium2."""

from __future__ import annotations

from pathlib import Path

import pypdfium2 as pdfium

VIGNETTE_DPI = 150
VIGNETTE_QUALITY = 85


def render_vignette(pdf_path: Path, out_jpg: Path, *, dpi: int = VIGNETTE_DPI) -> tuple[int, int]:
    """Render page 1 of `pdf_path` as a JPEG at `dpi` (dpi recorded in the file); returns (width, height)."""
    pdf = pdfium.PdfDocument(str(pdf_path))
    try:
        if len(pdf) == 0:
            raise ValueError(f"{pdf_path}: the PDF has no page to make a thumbnail of")
        page = pdf[0]
        image = page.render(scale=dpi / 72).to_pil().convert("RGB")
        out_jpg.parent.mkdir(parents=True, exist_ok=True)
        image.save(out_jpg, "JPEG", quality=VIGNETTE_QUALITY, dpi=(dpi, dpi), optimize=True)
        return image.size
    finally:
        pdf.close()
