"""S3 faults (issue 5, item 2): the ouvrage chain materialized through a fault-injecting HTTP proxy in front
of the moto server. Transient faults (503 SlowDown, 500, connection resets, read timeouts) are survived by
botocore's retries and, beyond them, by the assets' RetryPolicy; permanent ones (403, missing bucket) fail
the run with a message naming the bucket and key, and publish nothing.

The faults injected in each scenario are written to `pdfgen_pipeline_tests/artifacts/s3_faults.json`.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from dagster._serdes import serialize_value

from pdfgen_pipeline.defs.assets import ouvrage_assets
from pdfgen_pipeline.defs.io_managers import ArtifactPointerIOManager
from pdfgen_pipeline.defs.partitions import OUVRAGES
from pdfgen_pipeline.defs.resources import S3_MAX_ATTEMPTS, stores_from_env
from pdfgen_pipeline_tests.s3faults import Fault, FaultProxy

OUVRAGE = "lf1"  # the smallest sample
READ_TIMEOUT = 1.5  # PDFGEN_S3_READ_TIMEOUT for these tests; the proxy holds a `timeout` longer than that
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
REPORT = ARTIFACTS / "s3_faults.json"
_REPORT_LOCK = threading.Lock()


@pytest.fixture
def proxy(s3, monkeypatch):
    """A fault proxy in front of moto, with the pipeline's S3 endpoint pointed at it (no faults planned yet)."""
    with FaultProxy(s3.endpoint, hold=READ_TIMEOUT + 1.5) as p:
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3", p.url)
        monkeypatch.setenv("PDFGEN_S3_READ_TIMEOUT", str(READ_TIMEOUT))
        monkeypatch.setenv("PDFGEN_S3_CONNECT_TIMEOUT", "2")
        yield p


def _resources() -> dict:
    stores = stores_from_env()
    return {"stores": stores, "artifact_pointers": ArtifactPointerIOManager(stores=stores)}


def _materialize(instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize(ouvrage_assets, partition_key=OUVRAGE, instance=instance, resources=_resources(),
                          raise_on_error=False)


def _event_counts(instance: dg.DagsterInstance, run_id: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in instance.all_logs(run_id):
        if entry.dagster_event is not None:
            counts[entry.dagster_event.event_type_value] = counts.get(entry.dagster_event.event_type_value, 0) + 1
    return counts


def _retried_steps(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [e.dagster_event.step_key for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY)]


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Every step failure's error message, with its causes."""
    texts = []
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        while error is not None:
            texts.append(f"{error.cls_name}: {error.message}")
            error = error.cause or error.context
    return "\n".join(texts)


def _objects(s3, bucket: str, prefix: str = "") -> dict[str, dict]:
    out = {}
    for page in s3.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"]] = o
    return out


def _snapshot(s3, bucket: str) -> dict[str, str]:
    """Every object of `bucket` (read directly from moto): key → sha256 of its bytes."""
    return {k: hashlib.sha256(s3.client.get_object(Bucket=bucket, Key=k)["Body"].read()).hexdigest()
            for k in _objects(s3, bucket)}


def _assert_published(s3) -> dict:
    """The publication of OUVRAGE is complete and consistent: the manifest lists exactly the published files,
    with their sizes and sha256; nothing is left in staging."""
    bucket = s3.buckets["generated"]
    objects = _objects(s3, bucket, f"{OUVRAGE}/")
    assert not [k for k in objects if "/.staging/" in k], "staged files left behind"
    manifest = json.loads(s3.client.get_object(Bucket=bucket, Key=f"{OUVRAGE}/manifest.json")["Body"].read())
    top = {k.split("/", 1)[1] for k in objects if "/history/" not in k}
    assert set(manifest["files"]) == top - {"manifest.json"}
    assert {"document.pdf", "vignette.jpg", "stderr.log", "report.json"} <= set(manifest["files"])
    for name, entry in manifest["files"].items():
        body = s3.client.get_object(Bucket=bucket, Key=f"{OUVRAGE}/{name}")["Body"].read()
        assert len(body) == entry["size"] == objects[f"{OUVRAGE}/{name}"]["Size"], name
        assert hashlib.sha256(body).hexdigest() == entry["sha256"], name
    assert manifest["ouvrage"] == OUVRAGE and manifest["pages"] > 0
    return manifest


def _record(scenario: str, proxy: FaultProxy, **extra) -> dict:
    """Add this scenario's counts to the JSON report (other scenarios' entries are kept)."""
    entry = {**proxy.stats(), **extra, "at": datetime.now(UTC).isoformat(timespec="seconds")}
    with _REPORT_LOCK:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            report = json.loads(REPORT.read_text("utf-8"))
        except (OSError, ValueError):
            report = {}
        report[scenario] = entry
        REPORT.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n", "utf-8")
    return entry


# scenario (= the fault kind) → (plan, minimum faults injected, whether a Dagster step retry is required).
# With `first` above S3_MAX_ATTEMPTS, the first S3 call of the run (the referentiel listing) fails after all
# of botocore's attempts and the RetryPolicy re-runs the step; `every` spreads faults over every kind of call.
SCENARIOS = {
    "slowdown": ([Fault("slowdown", first=3), Fault("slowdown", every=20)], 5, False),
    "internal": ([Fault("internal", first=S3_MAX_ATTEMPTS + 2), Fault("internal", every=9)],
                 S3_MAX_ATTEMPTS + 4, True),
    "reset": ([Fault("reset", first=S3_MAX_ATTEMPTS + 2), Fault("reset", every=9)], S3_MAX_ATTEMPTS + 4, True),
    "timeout": ([Fault("timeout", first=3), Fault("timeout", every=30, limit=2)], 5, False),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_transient_faults_are_survived(s3, proxy, scenario):
    plan, at_least, needs_step_retry = SCENARIOS[scenario]
    kind = scenario
    proxy.set_plan(plan)
    t = time.perf_counter()
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(OUVRAGES, [OUVRAGE])
        result = _materialize(instance)
        events = _event_counts(instance, result.run_id)
        retried = _retried_steps(instance, result.run_id)
    entry = _record(f"transient/{scenario}", proxy, run_success=result.success, step_retries=len(retried),
                    retried_steps=retried, step_restarts=events.get("STEP_RESTARTED", 0),
                    seconds=round(time.perf_counter() - t, 1))
    assert result.success, _failure_text(result)
    assert entry["injected"].get(kind, 0) >= at_least, entry
    assert set(entry["injected"]) == {kind}
    if needs_step_retry:
        assert retried and events.get("STEP_RESTARTED", 0) >= 1, entry
        assert "ouvrage_source" in retried  # the first call (the referentiel listing) exhausted botocore's retries
    _assert_published(s3)


@pytest.mark.parametrize("methods", [None, ("PUT", "POST", "DELETE")], ids=["all", "writes"])
def test_access_denied_on_the_generated_bucket_publishes_nothing(s3, proxy, methods):
    """A persistent 403 (on every request, or on writes only) fails the run at once: neither botocore nor the
    step's RetryPolicy tries again (a 403 is permanent); the previous publication stays."""
    generated, production = s3.buckets["generated"], s3.buckets["production"]
    t = time.perf_counter()
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(OUVRAGES, [OUVRAGE])
        assert _materialize(instance).success
        previous = _assert_published(s3)
        before = _snapshot(s3, generated)
        # a new version of the source, to be published into a bucket that now refuses us
        key = f"{OUVRAGE}/xml/document.xml"
        body = s3.client.get_object(Bucket=production, Key=key)["Body"].read()
        s3.client.put_object(Bucket=production, Key=key, Body=body.replace(b"<txt>", b"<txt>Nouveau ", 1))
        proxy.set_plan([Fault("denied", bucket=generated, methods=methods)])
        result = _materialize(instance)
        retried = _retried_steps(instance, result.run_id)
        event_log = "\n".join(serialize_value(e) for e in instance.all_logs(result.run_id))
    entry = _record(f"denied/{'all' if methods is None else 'writes'}", proxy, run_success=result.success,
                    step_retries=len(retried), retried_steps=retried, seconds=round(time.perf_counter() - t, 1))
    assert not result.success
    failed = [e.step_key for e in result.get_step_failure_events()]
    assert failed == ["ouvrage_publication"]
    text = _failure_text(result)
    assert "StoreError" in text and f"s3://{generated}/{OUVRAGE}/" in text, text
    expected_key = f"{OUVRAGE}/manifest.json" if methods is None else f"{OUVRAGE}/.staging/{result.run_id}/"
    assert f"s3://{generated}/{expected_key}" in text, text
    assert "403" in text or "AccessDenied" in text, text
    assert not retried and entry["injected"]["denied"] == 1  # one request, no retry of any kind
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):  # the error and the whole event log: no secret
        assert s3.env[name] not in text and s3.env[name] not in event_log, name
    assert _snapshot(s3, generated) == before  # nothing written, nothing removed: the previous set is intact
    assert _assert_published(s3) == previous


def test_missing_generated_bucket_fails_and_publishes_nothing(s3, proxy, monkeypatch):
    missing = f"{s3.buckets['generated']}-missing"
    monkeypatch.setenv("PDFGEN_GENERATED_URL", f"s3://{missing}")
    before = {name: _snapshot(s3, bucket) for name, bucket in s3.buckets.items() if name != "artifacts"}
    t = time.perf_counter()
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(OUVRAGES, [OUVRAGE])
        result = _materialize(instance)
        retried = _retried_steps(instance, result.run_id)
    _record("missing_bucket", proxy, run_success=result.success, step_retries=len(retried),
            retried_steps=retried, seconds=round(time.perf_counter() - t, 1))
    assert not result.success
    assert [e.step_key for e in result.get_step_failure_events()] == ["ouvrage_publication"]
    text = _failure_text(result)
    assert "StoreError" in text and f"s3://{missing}/{OUVRAGE}/" in text and "NoSuchBucket" in text, text
    assert missing not in {b["Name"] for b in s3.client.list_buckets()["Buckets"]}  # not created on the way
    assert {name: _snapshot(s3, bucket) for name, bucket in s3.buckets.items() if name != "artifacts"} == before
