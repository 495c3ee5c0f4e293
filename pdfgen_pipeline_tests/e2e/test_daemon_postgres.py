"""The production deployment end to end: a code server, the daemon and the webserver as separate processes,
on the repository's real dagster.yaml (Postgres storage, queued runs with at most one run per ouvrage, run
retries, run monitoring) backed by a temporary PostgreSQL server, with the four stores on moto's S3 server.

The test process reads the same instance (`DagsterInstance.get()` on the same DAGSTER_HOME and database) to
follow runs, ticks and backfills; it drives the deployment only through the webserver's GraphQL API and S3.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest
import requests
import sqlalchemy
from dagster._core.execution.backfill import BulkActionStatus  # not re-exported by dagster
from dagster._serdes import serialize_value

from pdfgen_pipeline_tests.conftest import REPO, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

LOCATION = "pdfgen_pipeline"
REPOSITORY = "__repository__"  # the repository name of a `Definitions` object
SENSOR = "referentiel_production_sensor"
JOB = "publish_ouvrage"
SAMPLES = ["c99", "g9", "lf1"]
PARTITION_TAG = "dagster/partition"
SENSOR_TAG = "dagster/sensor_name"
BACKFILL_TAG = "dagster/backfill"
SOURCE_VERSION_TAG = "pdfgen/source_version"
DEADLINE = 600  # seconds, for each wait on the deployment (a sample ouvrage renders in ~10-40 s)
START_DEADLINE = 180  # seconds, for the services to come up
BIN = Path(sys.executable).parent  # the venv's bin/: dagster, dagster-daemon, dagster-webserver
FAILED = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED, dg.DagsterRunStatus.CANCELING}
SENSOR_SELECTOR = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "sensorName": SENSOR}
REPOSITORY_SELECTOR = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}


class E2EFailure(AssertionError):
    """The deployment did something wrong (a run failed, a service died): stop waiting."""


# ----------------------------------------------------------------------------- the services


class Services:
    """Subprocesses in their own process groups, each logging to a file; stopped (whole groups) at the end."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.env, self.logs = env, logs
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *cmd: str) -> None:
        with open(self.logs / f"{name}.log", "wb") as log:
            self.procs[name] = subprocess.Popen(cmd, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise E2EFailure(f"{name} exited with code {proc.returncode}")

    def stop(self) -> None:
        for proc in reversed(self.procs.values()):  # webserver and daemon first: nothing new is launched
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in reversed(self.procs.values()):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(proc, signal.SIGKILL)  # stragglers of the group too (e.g. run workers)
            proc.wait(timeout=30)

    def tail(self, lines: int = 40) -> str:
        out = []
        for name in self.procs:
            path = self.logs / f"{name}.log"
            text = path.read_text("utf-8", "replace").splitlines()[-lines:] if path.exists() else []
            out.append(f"--- last {len(text)} lines of {path}\n" + "\n".join(text))
        return "\n".join(out)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)  # start_new_session: the group id is the leader's pid


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    response = requests.post(f"{url}/graphql", json={"query": query, "variables": variables or {}}, timeout=60)
    response.raise_for_status()
    body = response.json()
    if body.get("errors"):
        raise E2EFailure(f"GraphQL errors: {json.dumps(body['errors'], indent=1)[:3000]}")
    return body["data"]


def wait_until(what: str, condition: Callable[[], object], diagnostics: Callable[[], str],
               timeout: float = DEADLINE, interval: float = 1.0):
    """Poll `condition` until it returns something truthy (returned); fail with diagnostics on timeout or
    when `condition` raises E2EFailure."""
    start = time.monotonic()
    while True:
        try:
            value = condition()
        except E2EFailure as exc:
            pytest.fail(f"{what}: {exc}\n{diagnostics()}", pytrace=False)
        if value:
            print(f"[e2e] {what}: {time.monotonic() - start:.1f} s")
            return value
        if time.monotonic() - start > timeout:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{diagnostics()}", pytrace=False)
        time.sleep(interval)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


# ----------------------------------------------------------------------------- the deployment


WORKSPACE_QUERY = """
query { workspaceOrError { __typename ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message } } } } ... on PythonError { message } } }"""
RELOAD_MUTATION = """
mutation($name: String!) { reloadRepositoryLocation(repositoryLocationName: $name) { __typename
  ... on WorkspaceLocationEntry { loadStatus locationOrLoadError { __typename ... on PythonError { message } } }
  ... on PythonError { message } } }"""
DAEMONS_QUERY = """
query { instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }"""
START_SENSOR = """
mutation($selector: SensorSelector!) { startSensor(sensorSelector: $selector) { __typename
  ... on Sensor { sensorState { status } } ... on PythonError { message stack }
  ... on SensorNotFoundError { message } ... on UnauthorizedError { message } } }"""
SENSOR_TICKS = """
query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) { __typename
  ... on Sensor { sensorState { status ticks(limit: 100) { id status timestamp runIds skipReason
    error { message } } } } ... on PythonError { message } } }"""
PARTITION_SETS = """
query($repositorySelector: RepositorySelector!, $job: String!) {
  partitionSetsOrError(repositorySelector: $repositorySelector, pipelineName: $job) { __typename
    ... on PartitionSets { results { name pipelineName } } ... on PythonError { message } } }"""
LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) { __typename
  ... on LaunchBackfillSuccess { backfillId } ... on Error { message } ... on PythonError { stack } } }"""
LAUNCH_RUN = """
mutation($executionParams: ExecutionParams!) { launchRun(executionParams: $executionParams) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on Error { message } ... on PythonError { stack } } }"""
NEEDED_DAEMONS = {"SENSOR", "BACKFILL", "QUEUED_RUN_COORDINATOR", "MONITORING"}


class Deployment:
    """What the test talks to: the webserver (GraphQL), the instance (Postgres), the services' logs."""

    def __init__(self, services: Services, url: str, instance: dg.DagsterInstance, postgres):
        self.services, self.url, self.instance, self.postgres = services, url, instance, postgres

    def gql(self, query: str, **variables) -> dict:
        return graphql(self.url, query, variables)

    def records(self, **tags: str) -> list:
        return list(self.instance.get_run_records(filters=dg.RunsFilter(tags=tags) if tags else None))

    def sensor_ticks(self) -> list[dict]:
        data = self.gql(SENSOR_TICKS, selector=SENSOR_SELECTOR)["sensorOrError"]
        if data["__typename"] != "Sensor":
            raise E2EFailure(f"sensor: {data}")
        return data["sensorState"]["ticks"]

    def diagnostics(self) -> str:
        lines = ["=== runs"]
        try:
            for r in sorted(self.records(), key=lambda r: r.create_timestamp):
                run, tags = r.dagster_run, r.dagster_run.tags
                lines.append(f"{run.run_id[:8]} {run.job_name:<20} {tags.get(PARTITION_TAG, '-'):<5} "
                             f"{run.status.value:<10} sensor={tags.get(SENSOR_TAG, '-')} "
                             f"backfill={tags.get(BACKFILL_TAG, '-')} start={r.start_time} end={r.end_time}")
                if run.status in FAILED:
                    for entry in list(self.instance.all_logs(run.run_id))[-12:]:
                        lines.append(f"    {entry.level} {entry.message[:400]}")
            lines.append("=== backfills")
            for b in self.instance.get_backfills():
                lines.append(f"{b.backfill_id} {b.status.value} {b.error.message[:500] if b.error else ''}")
        except Exception as exc:  # diagnostics must not hide the failure
            lines.append(f"(instance unreadable: {exc!r})")
        try:
            lines.append("=== sensor ticks")
            lines.extend(json.dumps(t)[:600] for t in self.sensor_ticks()[:10])
        except Exception as exc:
            lines.append(f"(ticks unavailable: {exc!r})")
        lines.append(self.services.tail())
        lines.append(f"--- postgres log\n{self.postgres.tail_log(20)}")
        return "\n".join(lines)

    def wait(self, what: str, condition: Callable[[], object], timeout: float = DEADLINE, interval: float = 1.0):
        def checked():
            self.services.check_alive()
            return condition()

        return wait_until(what, checked, self.diagnostics, timeout, interval)

    def wait_runs_succeed(self, what: str, count: int, **tags: str) -> list:
        """Wait for `count` runs with these tags, all SUCCESS (fails at once if one fails); their records."""

        def done():
            records = self.records(**tags)
            failed = [r.dagster_run for r in records if r.dagster_run.status in FAILED]
            if failed:
                raise E2EFailure(f"run(s) failed: {[(r.run_id, r.tags.get(PARTITION_TAG)) for r in failed]}")
            if len(records) > count:
                raise E2EFailure(f"{len(records)} runs, expected {count}")
            ok = len(records) == count and all(r.dagster_run.status == dg.DagsterRunStatus.SUCCESS
                                               for r in records)
            return records if ok else None

        return self.wait(what, done)


@pytest.fixture
def deployment(s3, postgres, tmp_path, monkeypatch):
    """DAGSTER_HOME with the repository's dagster.yaml on a fresh database; code server, daemon, webserver."""
    home, logs = tmp_path / "dagster_home", tmp_path / "logs"
    home.mkdir()
    logs.mkdir()
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")  # unchanged: the production configuration
    db = postgres.create_database(f"dagster_e2e_{os.getpid()}_{int(time.time())}")
    env = {**s3.env, **postgres.env(db), "DAGSTER_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code_port, web_port = free_port(), free_port()
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(f"load_from:\n  - grpc_server:\n      host: 127.0.0.1\n      port: {code_port}\n"
                         f"      location_name: {LOCATION}\n")

    # The schema is created here, once, before three processes race to create it.
    try:
        instance = dg.DagsterInstance.get()
    except ModuleNotFoundError as exc:  # e.g. SQLAlchemy >= 2.1 maps postgresql:// to psycopg 3
        pytest.fail(f"dagster.yaml's Postgres storage cannot be opened: {exc!r}. SQLAlchemy "
                    f"{sqlalchemy.__version__} resolves the URL dagster-postgres builds from `postgres_db` "
                    "(postgresql://...) to a driver that is not installed; dagster-postgres needs psycopg2: set "
                    "`scheme: postgresql+psycopg2` under storage.postgres.postgres_db (or pin sqlalchemy<2.1).",
                    pytrace=False)
    services = Services({**os.environ, **env}, logs)
    url = f"http://127.0.0.1:{web_port}"
    dep = Deployment(services, url, instance, postgres)
    dep.home = home
    try:
        services.start("code-server", str(BIN / "dagster"), "code-server", "start", "-m", "pdfgen_pipeline.definitions",
                       "-h", "127.0.0.1", "-p", str(code_port), "--location-name", LOCATION)
        dep.wait("code server listening", lambda: port_open(code_port), START_DEADLINE)
        services.start("webserver", str(BIN / "dagster-webserver"), "-w", str(workspace), "-h", "127.0.0.1",
                       "-p", str(web_port))

        def location_loaded():
            if not port_open(web_port):
                return False
            entries = dep.gql(WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"]
            entry = next(e for e in entries if e["name"] == LOCATION)
            if entry["loadStatus"] == "LOADED" and entry["locationOrLoadError"]["__typename"] == "PythonError":
                # the webserver came up before the code server had loaded the code: ask it to reload
                dep.gql(RELOAD_MUTATION, name=LOCATION)
                return False
            return entry["loadStatus"] == "LOADED"

        dep.wait("webserver up, code location loaded", location_loaded, START_DEADLINE)
        services.start("daemon", str(BIN / "dagster-daemon"), "run", "-w", str(workspace))

        def daemons_healthy():
            statuses = dep.gql(DAEMONS_QUERY)["instance"]["daemonHealth"]["allDaemonStatuses"]
            return {s["daemonType"] for s in statuses if s["healthy"]} >= NEEDED_DAEMONS

        dep.wait("daemons healthy", daemons_healthy, START_DEADLINE)
        yield dep
    finally:
        services.stop()
        instance.dispose()


# ----------------------------------------------------------------------------- helpers on S3 and runs


def published(s3, key: str) -> dict[str, int]:
    """Published files of ouvrage `key` (its top level: not history/ nor .staging/) → size."""
    listing = s3.client.list_objects_v2(Bucket=s3.buckets["generated"], Prefix=f"{key}/")
    return {o["Key"].split("/", 1)[1]: o["Size"] for o in listing.get("Contents", [])
            if o["Key"].count("/") == 1}


def manifest(s3, key: str) -> dict:
    body = s3.client.get_object(Bucket=s3.buckets["generated"], Key=f"{key}/manifest.json")["Body"].read()
    return json.loads(body)


def publication_metadata(instance: dg.DagsterInstance, run_id: str) -> dict:
    """Metadata of the run's ouvrage_publication materialization, as recorded in the instance."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("ouvrage_publication")), limit=100).records
    for record in records:
        if record.run_id == run_id:
            return {k: v.value for k, v in record.asset_materialization.metadata.items()}
    raise AssertionError(f"no ouvrage_publication materialization for run {run_id}")


def overlaps(records: list) -> list[tuple[str, str, str]]:
    """Pairs of runs of the same partition whose [start, end] intervals overlap."""
    by_partition = defaultdict(list)
    for r in records:
        if PARTITION_TAG in r.dagster_run.tags:
            by_partition[r.dagster_run.tags[PARTITION_TAG]].append(r)
    bad = []
    for partition, runs in by_partition.items():
        runs.sort(key=lambda r: r.start_time)
        bad.extend((partition, a.dagster_run.run_id, b.dagster_run.run_id)
                   for a, b in itertools.pairwise(runs) if b.start_time < a.end_time)
    return bad


def max_concurrency(records: list) -> int:
    intervals = [(r.start_time, r.end_time) for r in records]
    return max(sum(1 for s, e in intervals if s <= start < e) for start, _ in intervals)


# ----------------------------------------------------------------------------- the test


def run_table(records: list) -> str:
    t0 = min((r.create_timestamp.timestamp() for r in records), default=0)
    rows = []
    for r in sorted(records, key=lambda r: r.create_timestamp):
        run, tags = r.dagster_run, r.dagster_run.tags
        origin = ("sensor" if SENSOR_TAG in tags else f"backfill {tags[BACKFILL_TAG]}" if BACKFILL_TAG in tags
                  else "manual")
        rows.append(f"  {run.run_id[:8]} {tags.get(PARTITION_TAG, '-'):<4} {run.status.value:<8} {origin:<16} "
                    f"queued +{r.create_timestamp.timestamp() - t0:5.0f} s, ran +{(r.start_time or t0) - t0:5.0f} "
                    f"→ +{(r.end_time or t0) - t0:5.0f} s")
    return "\n".join(rows)


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
