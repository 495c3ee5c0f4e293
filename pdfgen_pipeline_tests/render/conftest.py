"""Fixtures of the renderer's tests."""

from __future__ import annotations

import shutil

import pytest

from pdfgen_pipeline.render.pdf import render_pdf


@pytest.fixture(scope="session")
def single_c99(rendered, tmp_path_factory):
    """The c99 sample laid out in one process, the reference of the long-book path's tests: (work dir, whose
    `document.pdf` is that layout, result)."""
    src, _report = rendered["c99"]
    out = tmp_path_factory.mktemp("single") / "c99"
    shutil.copytree(src, out)
    result = render_pdf(out / "document.html", out / "document.pdf", sandbox_root=out, workers=1)
    assert "body_groups" not in result.seconds
    return out, result


@pytest.fixture(scope="session")
def parallel_c99(single_c99, tmp_path_factory):
    """The c99 sample laid out by the long-book path (2 processes, whatever its size): (work dir, PDF, result);
    the work dir's `document.pdf` is the one-process layout (`single_c99`).
    Read only: the tests that change the book render their own."""
    out, _single = single_c99
    pdf = tmp_path_factory.mktemp("parallel") / "document.pdf"
    result = render_pdf(out / "document.html", pdf, sandbox_root=out, workers=2, min_parallel_chars=0)
    return out, pdf, result
