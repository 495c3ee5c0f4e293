"""The `pdfgen` command line, run as a user would (subprocesses)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from lxml import etree

from pdfgen_pipeline_tests.conftest import REFERENTIEL, REPO

WORD = re.compile(r"\w+")
PROGRESS = re.compile(r"^Étape (\d+) sur (\d+)")


#: The console script installed with the project, beside this interpreter.
PDFGEN = Path(sys.executable).parent / "pdfgen"


def _pdfgen(*args: str | Path, cwd: Path = REPO, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(PDFGEN), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=None if env is None else {**os.environ, **env})


def _pdf_text(path: Path) -> str:
    pdf = pdfium.PdfDocument(str(path))
    try:
        return " ".join(p.get_textpage().get_text_range() for p in pdf)
    finally:
        pdf.close()


def _error_line(proc: subprocess.CompletedProcess, code: int = 2) -> str:
    """The error is one line, `pdfgen: error: …`, and nothing Python-internal is shown."""
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("pdfgen: error: ")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def _broken_copy(tmp_path: Path, content: bytes | None) -> Path:
    d = tmp_path / "lf1"
    shutil.copytree(REFERENTIEL / "lf1", d)
    doc = d / "xml" / "document.xml"
    if content is None:
        doc.unlink()
    else:
        doc.write_bytes(content)
    return d


def _truncated_lf1() -> bytes:
    lines = (REFERENTIEL / "lf1" / "xml" / "document.xml").read_bytes().splitlines(keepends=True)
    return b"".join(lines[: len(lines) // 2])


@pytest.fixture(scope="module")
def rendered_lf1(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "out"
    return out, _pdfgen("render", REFERENTIEL / "lf1", "-o", out)


def test_render_writes_the_outputs_and_prints_the_pdf(rendered_lf1):
    out, proc = rendered_lf1
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    (line,) = proc.stdout.splitlines()
    path, pages = line.split("\t")
    assert Path(path) == out / "document.pdf"
    assert re.fullmatch(r"\d+ pages", pages)
    for name in ("document.pdf", "vignette.jpg", "stderr.log", "report.json"):
        assert (out / name).is_file(), name
        assert (out / name).stat().st_size > 0, name
    assert (out / "document.pdf").read_bytes()[:5] == b"%PDF-"
    assert (out / "vignette.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    (meta,) = out.glob("OUVNAUT_*.xml")
    assert "LF1" in meta.name.upper()
    etree.parse(str(meta))  # well-formed
    report = json.loads((out / "report.json").read_text("utf-8"))
    assert [d["pdf"] for d in report["documents"]] == ["document.pdf"]
    n_pages = len(pdfium.PdfDocument(str(out / "document.pdf")))
    assert int(pages.split()[0]) == report["documents"][0]["pages"] == n_pages


def test_render_reports_progress_on_stderr(rendered_lf1):
    out, proc = rendered_lf1
    steps = [PROGRESS.match(line) for line in proc.stderr.splitlines()]
    steps = [(int(m.group(1)), int(m.group(2))) for m in steps if m]
    assert steps, proc.stderr
    total = steps[0][1]
    assert total > 1
    assert steps == [(n, total) for n in range(1, total + 1)]
    log = (out / "stderr.log").read_text("utf-8")
    assert f"Étape 1 sur {total}" in log and f"Étape {total} sur {total}" in log


def test_render_quiet_has_no_progress(tmp_path):
    proc = _pdfgen("render", REFERENTIEL / "lf1", "-o", tmp_path / "out", "-q")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert (tmp_path / "out" / "document.pdf").is_file()


def test_render_malformed_document_exits_2_with_one_line(tmp_path):
    d = _broken_copy(tmp_path, _truncated_lf1())
    proc = _pdfgen("render", d, "-o", tmp_path / "out", "-q")
    line = _error_line(proc)
    assert proc.stderr.strip() == line  # quiet: that line only
    assert proc.stdout == ""
    doc = d / "xml" / "document.xml"
    assert re.search(re.escape(str(doc)) + r":\d+:\d+: malformed XML: \S", line), line
    assert not (tmp_path / "out" / "document.pdf").exists()


def test_render_malformed_document_error_is_one_line_besides_progress(tmp_path):
    d = _broken_copy(tmp_path, _truncated_lf1())
    proc = _pdfgen("render", d, "-o", tmp_path / "out")
    line = _error_line(proc)
    assert "document.xml:" in line
    others = [x for x in proc.stderr.splitlines() if not PROGRESS.match(x)]
    assert others == [line], proc.stderr


def test_render_missing_document_xml_exits_2(tmp_path):
    d = _broken_copy(tmp_path, None)
    proc = _pdfgen("render", d, "-o", tmp_path / "out", "-q")
    line = _error_line(proc)
    assert proc.stderr.strip() == line
    assert str(d / "xml" / "document.xml") in line
    assert "missing" in line


def test_render_stopped_by_its_time_limit_exits_3_naming_it(tmp_path):
    proc = _pdfgen("render", REFERENTIEL / "c99", "-o", tmp_path / "out", "-q",
                   env={"PDFGEN_RENDER_TIME_LIMIT": "0.2"})
    line = _error_line(proc, 3)
    assert "time limit hit" in line and "PDFGEN_RENDER_TIME_LIMIT" in line, line
    assert not (tmp_path / "out" / "document.pdf").exists()


def test_render_into_an_unwritable_output_exits_1_naming_it(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    proc = _pdfgen("render", REFERENTIEL / "lf1", "-o", blocker / "out", "-q")
    line = _error_line(proc, 1)
    assert str(blocker) in line, line


def test_render_empty_ouvrage_exits_2_with_line(tmp_path):
    d = _broken_copy(tmp_path, b'<?xml version="1.0"?>\n<document>\n  <ouvrage>\n  </ouvrage>\n</document>\n')
    proc = _pdfgen("render", d, "-o", tmp_path / "out", "-q")
    line = _error_line(proc)
    assert f"{d / 'xml' / 'document.xml'}:3" in line


def test_tableau_renders_the_table_text(tmp_path):
    table = REFERENTIEL / "lf1" / "tableaux" / "1.2.xml"
    out = tmp_path / "x.pdf"
    proc = _pdfgen("tableau", table, "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{out}\t{len(pdfium.PdfDocument(str(out)))} pages"
    words = set()
    for node in etree.parse(str(table)).getroot().iter("{http://openoffice.org/2000/text}p"):
        for piece in node.itertext():
            words |= set(WORD.findall(piece))
    assert len(words) > 30
    missing = words - set(WORD.findall(_pdf_text(out)))
    assert not missing, missing


def test_tableau_malformed_file_exits_2_with_file_and_line(tmp_path):
    bad = tmp_path / "1.2.xml"
    data = (REFERENTIEL / "lf1" / "tableaux" / "1.2.xml").read_bytes()
    bad.write_bytes(data.replace(b"</table:table-row>", b"</table:table-rows>", 1))
    proc = _pdfgen("tableau", bad, "-o", tmp_path / "x.pdf")
    line = _error_line(proc)
    assert proc.stderr.strip() == line
    assert re.search(re.escape(str(bad)) + r":\d+:\d+: malformed XML", line), line
    assert not (tmp_path / "x.pdf").exists()


def test_tableau_missing_file_exits_2(tmp_path):
    proc = _pdfgen("tableau", tmp_path / "absent.xml", "-o", tmp_path / "x.pdf")
    line = _error_line(proc)
    assert "absent.xml" in line and "not found" in line
