"""The production deployment for end-to-end tests: a code server, the daemon and the webserver as separate
processes, on the repository's real dagster.yaml (Postgres storage, queued runs with at most one run per
ouvrage, run retries, run monitoring) backed by a temporary PostgreSQL server, with the four stores on moto's
S3 server. The `deployment` fixture (registered in conftest.py) starts it.

Tests read the same instance (`DagsterInstance.get()` on the same DAGSTER_HOME and database) to follow runs,
ticks and backfills; they drive the deployment only through the webserver's GraphQL API and S3.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pytest
import requests
import sqlalchemy

from pdfgen_pipeline_tests.conftest import REPO, free_port

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
