"""Crashes (issue 5, item 3), on the production configuration (the repository's dagster.yaml on a real
Postgres, code server, daemon, webserver), S3 through a fault proxy in front of the moto server.

The run worker of a `publish_ouvrage` run is killed with SIGKILL, once while it renders and once while it
publishes (an upload held by the proxy). Each time: the run is marked failed (the code server notices its dead
worker), the daemon's run retries launch it again and the retry succeeds; consumers saw the previous publication
intact in the meantime; no staged files are left; the `pdf_render` pool slots of the dead run are freed.
"""

from __future__ import annotations

import os
import re
import signal
import time

import dagster as dg
import pytest

from pdfgen_pipeline.stores.publication import STAGING
from pdfgen_pipeline.stores.s3 import S3Store
from pdfgen_pipeline_tests.e2e.deployment import (
    FAILED,
    JOB,
    LAUNCH_RUN,
    PARTITION_TAG,
    REPOSITORY_SELECTOR,
    E2EFailure,
    manifest,
)
from pdfgen_pipeline_tests.s3faults import Fault, FaultProxy
from pdfgen_pipeline_tests.stores.test_publication_crash import consistent

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

KEY = "c99"
POOL = "pdf_render"
PARENT_TAG = "dagster/parent_run_id"
HOLD = 90  # seconds an upload is held by the proxy: longer than the kill takes, shorter than botocore's timeout
_PID = re.compile(r"Started process for run \(pid: (\d+)\)")


@pytest.fixture
def proxy(s3):
    """The fault proxy; the deployment (set up after this fixture) reaches S3 through it."""
    with FaultProxy(s3.endpoint, hold=HOLD) as p:
        s3.env["AWS_ENDPOINT_URL_S3"] = p.url
        yield p


def _launch(dep) -> str:
    launched = dep.gql(LAUNCH_RUN, executionParams={
        "selector": {**REPOSITORY_SELECTOR, "jobName": JOB}, "runConfigData": {},
        "executionMetadata": {"tags": [{"key": PARTITION_TAG, "value": KEY}]}})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def _step_started(instance: dg.DagsterInstance, run_id: str, step: str) -> bool:
    return any(e.dagster_event.step_key == step
               for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START))


def _worker_pid(instance: dg.DagsterInstance, run_id: str) -> int:
    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        if m := _PID.search(entry.message or ""):
            return int(m.group(1))
    raise AssertionError(f"no 'Started process for run' event in run {run_id}")


def _claimed(instance: dg.DagsterInstance) -> set[tuple[str, str]]:
    """(run id, step key) of every claimed `pdf_render` slot."""
    return {(c.run_id, c.step_key) for c in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots}


def _kill_during(dep, step: str, ready=lambda: True, holds_slot: bool = False) -> str:
    """Launch a run, SIGKILL its worker once `step` has started (and `ready()`), wait for the run to be marked
    failed; returns its id. `holds_slot`: the step must hold a `pdf_render` slot when it is killed."""
    instance = dep.instance
    run_id = _launch(dep)

    def in_step():
        run = instance.get_run_by_id(run_id)
        if run.status in FAILED or run.status == dg.DagsterRunStatus.SUCCESS:
            raise E2EFailure(f"run {run_id} ended ({run.status}) before its worker could be killed in {step}")
        return _step_started(instance, run_id, step) and ready()

    dep.wait(f"run {run_id[:8]} in {step}", in_step, interval=0.1)
    if holds_slot:
        assert (run_id, step) in _claimed(instance), f"{step} of run {run_id} runs without a {POOL} slot"
    os.kill(_worker_pid(instance, run_id), signal.SIGKILL)
    dep.wait(f"killed run {run_id[:8]} marked failed",
             lambda: instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE, timeout=120)
    return run_id


def _retry_succeeds(dep, run_id: str) -> dg.DagsterRun:
    """The daemon's retry of `run_id` (a new run whose parent is it) succeeds; returns it."""

    def retried():
        runs = [r.dagster_run for r in dep.records(**{PARENT_TAG: run_id})]
        if any(r.status in FAILED for r in runs):
            raise E2EFailure(f"retry of {run_id} failed: {runs}")
        done = [r for r in runs if r.status == dg.DagsterRunStatus.SUCCESS]
        return done[0] if done else None

    return dep.wait(f"retry of {run_id[:8]} succeeds", retried)


def _no_staging(s3) -> list[str]:
    listing = s3.client.list_objects_v2(Bucket=s3.buckets["generated"], Prefix=f"{KEY}/{STAGING}/")
    return [o["Key"] for o in listing.get("Contents", [])]


def test_killed_run_workers_are_retried_and_publish_once(s3, proxy, deployment):
    dep, instance = deployment, deployment.instance
    generated = S3Store.from_url(f"s3://{s3.buckets['generated']}", client=s3.client)
    instance.add_dynamic_partitions("ouvrages", [KEY])

    # a. killed while rendering: nothing was published; the retry publishes
    killed = _kill_during(dep, "ouvrage_pdf", holds_slot=True)
    assert consistent(generated, KEY) is None and not _no_staging(s3)  # never published, nothing staged
    first = _retry_succeeds(dep, killed)
    assert manifest(s3, KEY)["run_id"] == first.run_id and consistent(generated, KEY) is not None
    assert first.tags.get("dagster/retry_number") == "1"

    # b. a new source version; killed while publishing (its third upload to the generated bucket held)
    production = s3.buckets["production"]
    key = f"{KEY}/xml/document.xml"
    xml = s3.client.get_object(Bucket=production, Key=key)["Body"].read()
    s3.client.put_object(Bucket=production, Key=key, Body=xml + b"<!-- crash test: a new version -->\n")
    proxy.set_plan([Fault("timeout", bucket=s3.buckets["generated"], methods=("PUT",), every=3, limit=1)])
    before = consistent(generated, KEY)
    killed = _kill_during(dep, "ouvrage_publication", ready=lambda: proxy.stats()["injected"].get("timeout") == 1)
    assert _no_staging(s3), "the killed run had staged files"  # its first uploads, now orphaned
    assert consistent(generated, KEY) == before, "the previous publication must be intact after the kill"
    second = _retry_succeeds(dep, killed)
    after = manifest(s3, KEY)
    assert after["run_id"] == second.run_id and consistent(generated, KEY) == after["source_version"] != before
    assert not _no_staging(s3), "staged files of the killed run left behind"

    # c. each version published once: a single publication per successful run, none by the killed ones
    publications = instance.fetch_materializations(dg.AssetKey("ouvrage_publication"), limit=100).records
    assert sorted(r.run_id for r in publications) == sorted([first.run_id, second.run_id])

    # d. the pool slots the dead runs held (the one killed in ouvrage_pdf did, checked at the kill) are given back
    # (run monitoring, free_slots_after_run_end_seconds)
    def slots_free():
        info = instance.event_log_storage.get_concurrency_info(POOL)
        return not info.claimed_slots and not info.pending_steps

    t = time.monotonic()
    dep.wait(f"{POOL} slots freed", slots_free, timeout=300, interval=2)
    print(f"[e2e] pool slots free {time.monotonic() - t:.0f} s after the last run")
    print(f"[e2e] faults: {proxy.stats()['injected']}")
