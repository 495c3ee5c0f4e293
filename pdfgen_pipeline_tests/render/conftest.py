"""Fixtures of the renderer's tests."""

from __future__ import annotations

import pytest

from pdfgen_pipeline.render.pdf import render_pdf


@pytest.fixture(scope="session")
def parallel_c99(rendered, tmp_path_factory):
    """The c99 sample laid out by the long-book path (2 processes, whatever its size): (work dir, PDF, result).
    Read only: the tests that change the book render their own."""
    out, _report = rendered["c99"]
    pdf = tmp_path_factory.mktemp("parallel") / "document.pdf"
    result = render_pdf(out / "document.html", pdf, sandbox_root=out, workers=2, min_parallel_chars=0)
    return out, pdf, result
