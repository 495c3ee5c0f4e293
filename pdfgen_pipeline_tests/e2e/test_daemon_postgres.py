"""The production deployment end to end: a code server, the daemon and the webserver as separate processes,
on the repository's real dagster.yaml (Postgres storage, queued runs with at most one run per ouvrage, run
retries, run monitoring) backed by a temporary PostgreSQL server, with the four stores on moto's S3 server.

The test process reads the same instance (`DagsterInstance.get()` on the same DAGSTER_HOME and database) to
follow runs, ticks and backfills; it drives the deployment only through the webserver's GraphQL API and S3.
"""

from __future__ import annotations

import io
import time
import zipfile

import dagster as dg
import pytest
from dagster._core.execution.backfill import BulkActionStatus  # not re-exported by dagster
from dagster._serdes import serialize_value

from pdfgen_pipeline_tests.e2e.deployment import (
    BACKFILL_TAG,
    FAILED,
    JOB,
    LAUNCH_BACKFILL,
    LAUNCH_RUN,
    PARTITION_SETS,
    PARTITION_TAG,
    REPOSITORY_SELECTOR,
    SAMPLES,
    SENSOR,
    SENSOR_SELECTOR,
    SENSOR_TAG,
    SOURCE_VERSION_TAG,
    START_SENSOR,
    E2EFailure,
    manifest,
    max_concurrency,
    overlaps,
    publication_metadata,
    published,
    run_table,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def test_sensor_change_and_backfill_through_the_daemon_on_postgres(s3, deployment):
    dep, instance, generated = deployment, deployment.instance, s3.buckets["generated"]
    t0 = time.monotonic()

    # a. the sensor, turned on through the webserver, registers the ouvrages and publishes all three
    started = dep.gql(START_SENSOR, selector=SENSOR_SELECTOR)["startSensor"]
    assert started["__typename"] == "Sensor" and started["sensorState"]["status"] == "RUNNING", started
    first = dep.wait_runs_succeed("3 sensor runs succeed", 3, **{SENSOR_TAG: SENSOR})
    assert sorted(instance.get_dynamic_partitions("ouvrages")) == SAMPLES
    first_by_key = {r.dagster_run.tags[PARTITION_TAG]: r.dagster_run for r in first}
    assert sorted(first_by_key) == SAMPLES
    assert all(r.job_name == JOB for r in first_by_key.values())
    for key, run in first_by_key.items():
        files = published(s3, key)
        expected = {"document.pdf", "vignette.jpg", "stderr.log", "manifest.json", "report.json"}
        assert expected <= set(files), (key, files)
        assert ("archive.zip" in files) == (key == "g9"), (key, files)
        assert [n for n in files if n.startswith("OUVNAUT_") and n.endswith(".xml")], (key, files)
        assert all(size > 0 for size in files.values()), (key, files)
        m = manifest(s3, key)
        assert m["run_id"] == run.run_id, key
        # what the sensor compares with after a lost cursor: must be the version it tagged the run with
        assert m["source_version"] == run.tags[SOURCE_VERSION_TAG], key
        assert set(m["files"]) == set(files) - {"manifest.json"}, (key, sorted(m["files"]), sorted(files))
    def body(key: str) -> bytes:
        return s3.client.get_object(Bucket=generated, Key=key)["Body"].read()

    assert body("g9/document.pdf").startswith(b"%PDF-") and body("c99/vignette.jpg").startswith(b"\xff\xd8")
    g9_pdfs = sorted(n for n in manifest(s3, "g9")["files"] if n.endswith(".pdf"))
    assert len(g9_pdfs) == 2, g9_pdfs
    with zipfile.ZipFile(io.BytesIO(body("g9/archive.zip"))) as archive:
        assert sorted(archive.namelist()) == g9_pdfs
    print(f"[e2e] a. done at {time.monotonic() - t0:.0f} s")

    # b. one changed source file → the sensor launches one new run, for lf1
    before = manifest(s3, "lf1")
    production = s3.buckets["production"]
    xml = s3.client.get_object(Bucket=production, Key="lf1/xml/document.xml")["Body"].read()
    s3.client.put_object(Bucket=production, Key="lf1/xml/document.xml",
                         Body=xml + b"<!-- e2e: the source changed -->\n")
    first_ids = {r.run_id for r in first_by_key.values()}

    def new_sensor_run():
        runs = [r.dagster_run for r in dep.records(**{SENSOR_TAG: SENSOR}) if r.dagster_run.run_id not in first_ids]
        if any(r.status in FAILED for r in runs):
            raise E2EFailure(f"run failed: {runs}")
        return runs if any(r.status not in (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED)
                           for r in runs) else None

    new = dep.wait("the sensor's new run is in progress", new_sensor_run, interval=0.2)
    assert len(new) == 1 and new[0].tags[PARTITION_TAG] == "lf1", new
    lf1_run = new[0]
    assert lf1_run.tags[SOURCE_VERSION_TAG] != before["source_version"]

    # Meanwhile, someone asks for lf1 by hand (as the UI's "Materialize" does): that run is queued at once, while
    # the sensor's lf1 run is the only run in progress: a run slot is free, and only the one-run-per-ouvrage
    # limit (tag dagster/partition) may keep it waiting.
    manual = dep.gql(LAUNCH_RUN, executionParams={
        "selector": {**REPOSITORY_SELECTOR, "jobName": JOB}, "runConfigData": {},
        "executionMetadata": {"tags": [{"key": PARTITION_TAG, "value": "lf1"}, {"key": "e2e", "value": "manual"}]},
    })["launchRun"]
    assert manual["__typename"] == "LaunchRunSuccess", manual
    manual_id = manual["run"]["runId"]

    # b, continued: the sensor's lf1 run succeeds and publishes the new source version
    dep.wait_runs_succeed("the sensor's new lf1 run succeeds", 4, **{SENSOR_TAG: SENSOR})
    assert publication_metadata(instance, lf1_run.run_id)["source_version"] == lf1_run.tags[SOURCE_VERSION_TAG]
    after = manifest(s3, "lf1")  # (the manual lf1 run may have republished it since: same source)
    assert after["source_version"] == lf1_run.tags[SOURCE_VERSION_TAG] != before["source_version"]
    ticks = [t for t in dep.sensor_ticks() if t["runIds"]]
    assert sorted(len(t["runIds"]) for t in ticks) == [1, 3], ticks
    lf1_tick = next(t for t in ticks if len(t["runIds"]) == 1)
    assert lf1_tick["runIds"] == [lf1_run.run_id], lf1_tick
    print(f"[e2e] b. done at {time.monotonic() - t0:.0f} s")

    # c. a backfill of every partition of publish_ouvrage, launched through the webserver and run by the daemon
    # (lf1 first: its run may have to wait for the manual one)
    sets = dep.gql(PARTITION_SETS, repositorySelector=REPOSITORY_SELECTOR, job=JOB)["partitionSetsOrError"]
    names = [s["name"] for s in sets["results"] if s["pipelineName"] == JOB]
    assert len(names) == 1, sets
    partitions = instance.get_dynamic_partitions("ouvrages")
    assert sorted(partitions) == SAMPLES
    launched = dep.gql(LAUNCH_BACKFILL, params={
        "selector": {"partitionSetName": names[0], "repositorySelector": REPOSITORY_SELECTOR},
        "partitionNames": ["lf1", *(k for k in partitions if k != "lf1")],
        "title": "e2e: republish everything"})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    # c, continued: the daemon completes the backfill
    def backfill_done():
        backfill = instance.get_backfill(backfill_id)
        if backfill.status in (BulkActionStatus.FAILED, BulkActionStatus.COMPLETED_FAILED,
                               BulkActionStatus.CANCELED):
            raise E2EFailure(f"backfill {backfill.status}: {backfill.error}")
        return backfill.status in (BulkActionStatus.COMPLETED, BulkActionStatus.COMPLETED_SUCCESS)

    dep.wait_runs_succeed("the manual lf1 run succeeds", 1, e2e="manual")
    dep.wait_runs_succeed("the backfill's 3 runs succeed", 3, **{BACKFILL_TAG: backfill_id})
    dep.wait("the backfill is completed", backfill_done)
    backfill_runs = {r.dagster_run.tags[PARTITION_TAG]: r for r in dep.records(**{BACKFILL_TAG: backfill_id})}
    assert sorted(backfill_runs) == SAMPLES
    assert all(r.dagster_run.job_name == JOB for r in backfill_runs.values())
    ours = {r.dagster_run.run_id for r in dep.records()}
    for key, record in backfill_runs.items():
        version = (lf1_run.tags if key == "lf1" else first_by_key[key].tags)[SOURCE_VERSION_TAG]
        assert publication_metadata(instance, record.dagster_run.run_id)["source_version"] == version, key
        m = manifest(s3, key)  # rewritten by the backfill, or left as is if publishing is idempotent
        assert m["source_version"] == version and m["run_id"] in ours, (key, m)
        assert set(m["files"]) == set(published(s3, key)) - {"manifest.json"}, key

    # the instance's limits held over the whole test: one run per ouvrage at a time, two runs at most
    records = dep.records()
    print("[e2e] runs:\n" + run_table(records))
    assert all(r.start_time and r.end_time for r in records), run_table(records)
    assert not overlaps(records), (overlaps(records), run_table(records))
    assert max_concurrency(records) <= 2, run_table(records)
    # ... and the per-ouvrage limit was what held the manual lf1 run: queued while the sensor's lf1 run was the
    # only run in progress, it started only once that run had ended
    by_id = {r.dagster_run.run_id: r for r in records}
    sensor_lf1, manual_lf1 = by_id[lf1_run.run_id], by_id[manual_id]
    assert manual_lf1.dagster_run.status == dg.DagsterRunStatus.SUCCESS
    waited_from, waited_to = manual_lf1.create_timestamp.timestamp(), sensor_lf1.end_time
    assert waited_from < waited_to <= manual_lf1.start_time, run_table(records)
    others = [r.dagster_run.run_id for r in records if r.dagster_run.run_id not in (lf1_run.run_id, manual_id)
              and r.start_time < waited_to and r.end_time > waited_from]
    assert not others, (others, run_table(records))
    # and the sensor launched nothing more (its cursor follows the referentiel, not the publications)
    assert len(dep.records(**{SENSOR_TAG: SENSOR})) == 4
    print(f"[e2e] c. done at {time.monotonic() - t0:.0f} s")

    # d. no secret anywhere: the whole event log of every run (messages, metadata, errors), the compute logs and
    # everything else under DAGSTER_HOME, the services' output, and every published object (stderr.log, ...)
    secrets = {"S3 access key id": s3.env["AWS_ACCESS_KEY_ID"], "S3 secret key": s3.env["AWS_SECRET_ACCESS_KEY"],
               "database password": dep.postgres.password}
    haystacks: dict[str, str] = {}
    for record in records:
        run_id = record.dagster_run.run_id
        haystacks[f"run {run_id} event log"] = "\n".join(serialize_value(e) for e in instance.all_logs(run_id))
        haystacks[f"run {run_id} config and tags"] = serialize_value(record.dagster_run)
    files = [p for root in (dep.home, dep.services.logs) for p in root.rglob("*") if p.is_file()]
    assert any(p.suffix in (".err", ".out") or "compute" in str(p) for p in files), files  # compute logs exist
    for path in files:
        haystacks[str(path)] = path.read_bytes().decode("utf-8", "replace")
    for page in s3.client.get_paginator("list_objects_v2").paginate(Bucket=generated):
        for obj in page.get("Contents", []):
            body = s3.client.get_object(Bucket=generated, Key=obj["Key"])["Body"].read()
            haystacks[f"s3://{generated}/{obj['Key']}"] = body.decode("utf-8", "replace")
    assert sum("stderr.log" in name for name in haystacks) >= 3 and len(haystacks) > 50, sorted(haystacks)
    leaks = [(what, name) for name, text in haystacks.items() for what, value in secrets.items() if value in text]
    assert not leaks, leaks
