"""Every case of the corpus rendered with `render_ouvrage`, watched: the expected outcome, and nothing
read, written or fetched outside the case's folders."""

from __future__ import annotations

import functools
import os
import re
import tempfile
import time
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from pdfgen_pipeline.render import book, images
from pdfgen_pipeline.render.book import render_ouvrage
from pdfgen_pipeline_tests.hostile import watch
from pdfgen_pipeline_tests.hostile.corpus import (
    CASES,
    IMAGE_TIMEOUT_S,
    SENTINEL,
    Bench,
    Case,
    Neutralised,
    Raises,
    Warns,
)

#: Bytes that must never reach an output: /etc/passwd, what a tripwire hands over, our outside secret.
SECRETS = (watch.PASSWD_MARK, watch.TRIPWIRE_PAYLOAD.strip(), b"SECRET-OUTSIDE-9d2f")


def pdf_text(path: Path) -> str:
    """The text of a PDF, white space folded."""
    pdf = pdfium.PdfDocument(path)
    try:
        assert len(pdf) >= 1, f"{path.name} has no page"
        text = " ".join(page.get_textpage().get_text_range() for page in pdf)
    finally:
        pdf.close()
    return " ".join(text.replace("\u00a0", " ").split())


def _real(path: str | Path) -> str:
    return os.path.realpath(path)


def assert_refused(outcome: Raises, error: BaseException | None, bench: Bench) -> None:
    """The exception, its one-line message naming the file (line, column), and no PDF."""
    assert error is not None, "rendered, but the input should have been refused"
    assert isinstance(error, outcome.exc), f"{type(error).__name__}: {error}"
    message = str(error)
    assert "\n" not in message and "Traceback" not in message, message
    assert re.search(outcome.message, message), message
    if outcome.file is not None:
        path = str(bench.ouvrage / outcome.file)
        assert message.startswith(path), message
        rest = message[len(path):]
        if outcome.line is None:
            assert rest.startswith(": "), message
        elif outcome.line == 0:
            assert re.match(r":\d+:", rest), message
        else:
            column = r"\d+:" if outcome.column else ""
            assert re.match(rf":{outcome.line}:{column} ", rest), message
    assert not (bench.out / "document.pdf").exists()
    log = (bench.out / "stderr.log").read_text("utf-8")
    assert f"ERREUR {message}" in log


def assert_rendered(outcome: Warns | Neutralised, error: BaseException | None, report: dict | None,
                    bench: Bench) -> None:
    """A book with pages and its ordinary text; the expected warnings (or none at all)."""
    assert error is None, f"refused: {type(error).__name__}: {error}"
    assert report is not None
    text = pdf_text(bench.out / "document.pdf")
    for printed in (SENTINEL, *outcome.printed):
        assert printed in text, f"{printed!r} is not in the PDF"
    warnings = report["warnings"]
    if isinstance(outcome, Neutralised):
        assert warnings == [], warnings
        return
    for w in outcome.warnings:
        found = [x for x in warnings if x["code"] == w.code and re.search(w.message, x["message"])
                 and (w.file is None or _real(x["file"]) == _real(bench.ouvrage / w.file))]
        assert found, f"no warning {w}; got {[(x['code'], x['message'], x['file']) for x in warnings]}"
    log = (bench.out / "stderr.log").read_text("utf-8")
    assert log.count("AVERTISSEMENT") == len(warnings)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_render_corpus(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = Bench(tmp_path, folder=case.folder)
    try:
        case.build(bench)
        monkeypatch.setattr(tempfile, "tempdir", str(bench.tmp))  # the render's own temporary files
        # limits off: the layout runs in this process, where the audit hook sees every file it opens
        # (the limited child process is exercised by test_limits.py and the pipeline corpus)
        for name in ("PDFGEN_RENDER_TIME_LIMIT", "PDFGEN_RENDER_CPU_LIMIT", "PDFGEN_RENDER_MEMORY_LIMIT_MB"):
            monkeypatch.setenv(name, "0")
        # the production timeout is 60 s; 4 s keeps the infinite loop case short
        monkeypatch.setattr(book, "prepare_images", functools.partial(images.prepare_images,
                                                                       timeout_s=IMAGE_TIMEOUT_S))
        report = error = None
        start = time.monotonic()
        with watch.recording() as rec:
            try:
                report = render_ouvrage(bench.ouvrage, bench.out, commun_dir=bench.commun, key=case.key)
            except Exception as exc:  # the outcome is checked below
                error = exc
        elapsed = time.monotonic() - start

        # first what must never happen, whatever the outcome
        watch.assert_confined(rec, read=[bench.ouvrage, bench.commun], write=[bench.out, bench.tmp])
        assert not watch.leaks_in(bench.out, SECRETS)
        assert not any(s.decode() in str(error) for s in SECRETS)
        assert not watch.processes_in(bench.root), "a tool is still running"
        if case.check is not None:
            case.check(bench, bench.out)
        # then the outcome
        if isinstance(case.outcome, Raises):
            assert_refused(case.outcome, error, bench)
        else:
            assert_rendered(case.outcome, error, report, bench)
        if case.max_seconds is not None:
            assert elapsed < case.max_seconds, f"took {elapsed:.1f} s"
    finally:
        bench.close()


def test_corpus_is_large_and_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) >= 30 and len(set(ids)) == len(ids)
