"""Shared fixtures: the bundled sample referentiel, rendered once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pdfgen_pipeline.render.book import render_ouvrage

REPO = Path(__file__).resolve().parent.parent
REFERENTIEL = REPO / "examples" / "referentiel"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = Path(os.environ.get("PDFGEN_SHARED", REPO.parent / "shared"))
CORPUS_C22 = SHARED / "corpus" / "c22"


@pytest.fixture(scope="session")
def referentiel() -> Path:
    """The bundled sample referentiel (read-only: copy before changing it)."""
    return REFERENTIEL


@pytest.fixture(scope="session")
def rendered(tmp_path_factory) -> dict[str, tuple[Path, dict]]:
    """Every sample ouvrage rendered with `render_ouvrage`: key → (out_dir, report)."""
    root = tmp_path_factory.mktemp("rendered")
    out = {}
    for key in ("c99", "g9", "lf1"):
        out_dir = root / key
        out[key] = (out_dir, render_ouvrage(REFERENTIEL / key, out_dir))
    return out
