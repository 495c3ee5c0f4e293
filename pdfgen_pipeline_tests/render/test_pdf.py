"""PDF writing options: raster images are downsampled to 150 dpi and recompressed, as the former
Ghostscript /ebook step did."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pdfplumber
from PIL import Image

from pdfgen_pipeline.render.book import render_ouvrage
from pdfgen_pipeline.render.pdf import PDF_OPTIONS


def noisy_photo(path: Path, size: tuple[int, int]) -> None:
    """A photo-like JPEG that compresses badly (random blocks), far above 150 dpi at print size."""
    rng = random.Random(7)
    small = Image.new("RGB", (size[0] // 8, size[1] // 8))
    small.putdata([(rng.randrange(256), rng.randrange(256), rng.randrange(256))
                   for _ in range(small.width * small.height)])
    small.resize(size, Image.Resampling.BILINEAR).save(path, format="JPEG", quality=95)


def image_dpis(pdf_path: Path) -> list[tuple[tuple[int, int], float]]:
    """(pixel size, effective dpi at the printed size) of every image drawn in the PDF."""
    out = []
    with pdfplumber.open(pdf_path) as pdf:
        for page in pdf.pages:
            for im in page.images:
                width_in = (im["x1"] - im["x0"]) / 72
                out.append((tuple(im["srcsize"]), im["srcsize"][0] / width_in))
    return out


def test_raster_images_are_downsampled_to_150_dpi(referentiel: Path, tmp_path: Path) -> None:
    ouvrage = tmp_path / "c99"
    shutil.copytree(referentiel / "c99", ouvrage)
    photo = ouvrage / "illustrations" / "jpg" / "2.1.A.jpg"
    noisy_photo(photo, (3200, 2100))  # printed about 16 cm wide: ~500 dpi

    render_ouvrage(ouvrage, tmp_path / "out", commun_dir=referentiel / "commun")

    images = image_dpis(tmp_path / "out" / "document.pdf")
    assert images, "the sample ouvrage draws raster images"
    assert all(size != (3200, 2100) for size, _dpi in images), images  # the big photo was resampled
    assert max(dpi for _size, dpi in images) <= PDF_OPTIONS["dpi"] * 1.02, images
    assert (tmp_path / "out" / "document.pdf").stat().st_size < photo.stat().st_size
