"""Dagster's CLI in subprocesses against the moto S3 server: discover, publish, preview, tableau."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pypdfium2 as pdfium
import pytest

from pdfgen_pipeline.defs.partitions import OUVRAGES

REPO = Path(__file__).resolve().parents[2]
DAGSTER = str(Path(sys.executable).parent / "dagster")
MODULE = ["-m", "pdfgen_pipeline.definitions"]

pytestmark = pytest.mark.slow


@pytest.fixture
def cli(s3, tmp_path, monkeypatch):
    """Run `dagster …` with the S3 environment and a persistent instance in tmp (DAGSTER_HOME)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    env = {**os.environ, **s3.env, "DAGSTER_HOME": str(home)}

    def run(*args: str) -> subprocess.CompletedProcess:
        proc = subprocess.run([DAGSTER, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        return proc

    return run


def keys(s3, bucket: str, prefix: str = "") -> set[str]:
    pages = s3.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"] for p in pages for o in p.get("Contents", [])}


def test_discover_then_publish_with_job_execute_and_asset_materialize(s3, cli):
    cli("job", "execute", *MODULE, "-j", "discover_ouvrages")
    with dg.DagsterInstance.get() as instance:  # the same DAGSTER_HOME: partitions persisted
        assert sorted(instance.get_dynamic_partitions(OUVRAGES)) == ["c99", "g9", "lf1"]

    cli("job", "execute", *MODULE, "-j", "publish_ouvrage", "--tags", json.dumps({"dagster/partition": "lf1"}))
    lf1 = keys(s3, s3.buckets["generated"], "lf1/")
    assert {"lf1/document.pdf", "lf1/vignette.jpg", "lf1/OUVNAUT_LF1.xml", "lf1/stderr.log", "lf1/manifest.json",
            "lf1/report.json"} <= lf1

    cli("asset", "materialize", *MODULE, "--select", "group:ouvrages", "--partition", "g9")
    g9 = keys(s3, s3.buckets["generated"], "g9/")
    assert {"g9/document.pdf", "g9/annexe.pdf", "g9/archive.zip", "g9/manifest.json"} <= g9

    cli("asset", "materialize", *MODULE, "--select", "catalogue")
    catalogue = json.loads(s3.client.get_object(Bucket=s3.buckets["generated"], Key="catalogue.json")["Body"].read())
    assert [o["key"] for o in catalogue["ouvrages"]] == ["g9", "lf1"]


def test_preview_from_preparation_publishes_nothing(s3, cli, tmp_path):
    prep = s3.buckets["preparation"]
    body = s3.client.get_object(Bucket=prep, Key="lf1/xml/document.xml")["Body"].read()
    marker = "Version en préparation".encode()
    s3.client.put_object(Bucket=prep, Key="lf1/xml/document.xml",
                         Body=body.replace(b"<txt>", b"<txt>" + marker + b" ", 1))
    config = tmp_path / "preview.yaml"
    config.write_text("ops:\n  render_preview:\n    config:\n      ouvrage: lf1\n      referentiel: preparation\n",
                      "utf-8")
    proc = cli("job", "execute", *MODULE, "-j", "preview_ouvrage", "-c", str(config))
    assert keys(s3, s3.buckets["generated"]) == set()
    previews = sorted(k for k in keys(s3, s3.buckets["artifacts"], "previews/lf1/") if k.endswith("document.pdf"))
    assert len(previews) == 1
    assert previews[0] in proc.stdout + proc.stderr  # the log says where the PDF is
    pdf = s3.client.get_object(Bucket=s3.buckets["artifacts"], Key=previews[0])["Body"].read()
    text = "".join(p.get_textpage().get_text_range() for p in pdfium.PdfDocument(pdf))
    assert "Version en préparation" in text


def test_render_tableau_from_s3(s3, cli, tmp_path):
    table = f"s3://{s3.buckets['production']}/lf1/tableaux/1.2.xml"
    config = tmp_path / "tableau.yaml"
    config.write_text(f"ops:\n  render_table:\n    config:\n      table: {table}\n", "utf-8")
    cli("job", "execute", *MODULE, "-j", "render_tableau", "-c", str(config))
    pdfs = [k for k in keys(s3, s3.buckets["artifacts"], "tableaux/") if k.endswith("/1.2.pdf")]
    assert len(pdfs) == 1
    pdf = pdfium.PdfDocument(s3.client.get_object(Bucket=s3.buckets["artifacts"], Key=pdfs[0])["Body"].read())
    assert "Kermorvan" in "".join(p.get_textpage().get_text_range() for p in pdf)


def test_definitions_validate_with_the_workspace(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    for args in (["definitions", "validate", *MODULE], ["definitions", "validate", "-w", "workspace.yaml"]):
        proc = subprocess.run([DAGSTER, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "Validation successful" in proc.stderr + proc.stdout
