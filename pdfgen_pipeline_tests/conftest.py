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


# ----------------------------------------------------------------------------- S3 over real HTTP

BUCKETS = {
    "production": "sppnaut-referentiel-production",
    "preparation": "sppnaut-referentiel-preparation",
    "generated": "sppnaut-generated-production",
    "artifacts": "pdfgen-artifacts",
}
#: Distinctive values: tests grep logs and outputs for them (they must never appear there).
S3_ENV = {"AWS_ACCESS_KEY_ID": "AKIAPDFGENTEST7Q3Z", "AWS_SECRET_ACCESS_KEY": "pdfgen-test-secret-4f9c2e8a1b",
          "AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "eu-west-3"}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def moto_server():
    """A real HTTP S3 server (moto's server mode) on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def upload_referentiel(client, bucket: str, root: Path = REFERENTIEL) -> int:
    """Upload a local referentiel directory into `bucket` (keys relative to `root`)."""
    n = 0
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        client.upload_file(str(path), bucket, path.relative_to(root).as_posix())
        n += 1
    return n


@pytest.fixture
def s3(moto_server, monkeypatch):
    """Fresh buckets (production and preparation filled from the sample referentiel) and the environment
    variables that point the pipeline at them. Yields a namespace with the client, buckets and env."""
    import types
    import uuid

    import boto3

    suffix = uuid.uuid4().hex[:8]
    buckets = {name: f"{bucket}-{suffix}" for name, bucket in BUCKETS.items()}
    env = {**S3_ENV, "AWS_ENDPOINT_URL_S3": moto_server,
           "PDFGEN_REFERENTIEL_URL": f"s3://{buckets['production']}",
           "PDFGEN_PREPARATION_URL": f"s3://{buckets['preparation']}",
           "PDFGEN_GENERATED_URL": f"s3://{buckets['generated']}",
           "PDFGEN_ARTIFACTS_URL": f"s3://{buckets['artifacts']}"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    client = boto3.client("s3", endpoint_url=moto_server, region_name=S3_ENV["AWS_REGION"],
                          aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"])
    for bucket in buckets.values():
        client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": S3_ENV["AWS_REGION"]})
    upload_referentiel(client, buckets["production"])
    upload_referentiel(client, buckets["preparation"])
    return types.SimpleNamespace(client=client, endpoint=moto_server, buckets=buckets, env=env)


# ----------------------------------------------------------------------------- figures in the summary

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
_SESSION_START: list[float] = []


def pytest_sessionstart(session) -> None:
    import time

    _SESSION_START.append(time.time())


def pytest_terminal_summary(terminalreporter) -> None:
    """Print the figures the reliability tests measured in this session (faults survived, load backfill)."""
    import json

    reports = sorted(p for p in ARTIFACTS.glob("*.json") if _SESSION_START and p.stat().st_mtime >= _SESSION_START[0])
    if not reports:
        return
    terminalreporter.section("measured figures")
    for path in reports:
        try:
            data = json.loads(path.read_text("utf-8"))
        except ValueError:
            continue
        entries = data.items() if isinstance(data, dict) else [("", data)]
        for name, value in entries:
            if isinstance(value, dict):  # the figures, not the fault plan's details
                value = {k: v for k, v in value.items() if k not in ("rules", "at")}
            terminalreporter.write_line(f"{path.stem} {name}: {json.dumps(value, sort_keys=True)}"[:300])
