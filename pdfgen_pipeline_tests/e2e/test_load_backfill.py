"""Load (issue 5, item 8): 50 small ouvrages backfilled on the production configuration (dagster.yaml on a real
Postgres, code server, daemon, webserver; S3 on moto), 2 runs at once at most. All succeed, each ouvrage is
published exactly once by its own run, and memory stays bounded: the resident memory of every process of the
deployment is sampled all along (total and per process).

Duration and peak memory are printed and written to `pdfgen_pipeline_tests/artifacts/load_backfill.json`.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from pdfgen_pipeline.synthetic import ouvrage_xml
from pdfgen_pipeline_tests.e2e.deployment import (
    BACKFILL_TAG,
    FAILED,
    JOB,
    LAUNCH_BACKFILL,
    PARTITION_SETS,
    PARTITION_TAG,
    REPOSITORY_SELECTOR,
    E2EFailure,
    manifest,
    max_concurrency,
    overlaps,
    run_table,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]

OUVRAGES = [f"load{i:02d}" for i in range(50)]
PAGES = 3
#: Bounds: one run worker with its render is ~300 MB here; 2 runs at once plus the three services stay far below.
MAX_TOTAL_MB = 4096
MAX_PROCESS_MB = 1024
REPORT = Path(__file__).resolve().parents[1] / "artifacts" / "load_backfill.json"


class MemorySampler(threading.Thread):
    """Samples the resident memory of the processes in the given sessions (the services and their children)."""

    def __init__(self, sessions: set[int], interval: float = 0.5):
        super().__init__(name="load-memory-sampler", daemon=True)
        self.sessions, self.interval = sessions, interval
        self.peak_total_mb = 0.0
        self.peak_process_mb = 0.0
        self.peak_processes = 0
        self._stopping = threading.Event()

    def sample(self) -> None:
        total, count = 0.0, 0
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(") ", 1)[1].split()
                if int(fields[3]) not in self.sessions:  # field 6 of stat: the session id
                    continue
                rss_kb = next(int(line.split()[1]) for line in (stat.parent / "status").read_text().splitlines()
                              if line.startswith("VmRSS:"))
            except (OSError, IndexError, StopIteration, ValueError):
                continue  # the process ended meanwhile, or is a kernel thread
            total += rss_kb / 1024
            count += 1
            self.peak_process_mb = max(self.peak_process_mb, rss_kb / 1024)
        self.peak_total_mb = max(self.peak_total_mb, total)
        self.peak_processes = max(self.peak_processes, count)

    def run(self) -> None:
        while not self._stopping.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stopping.set()
        self.join(10)


def test_fifty_ouvrages_backfilled_two_at_a_time(s3, deployment):
    dep, instance, production = deployment, deployment.instance, s3.buckets["production"]
    for i, key in enumerate(OUVRAGES):
        s3.client.put_object(Bucket=production, Key=f"{key}/xml/document.xml",
                             Body=ouvrage_xml(key, PAGES, seed=i).encode("utf-8"))
    instance.add_dynamic_partitions("ouvrages", OUVRAGES)
    sampler = MemorySampler({p.pid for p in dep.services.procs.values()})
    sampler.sample()
    assert sampler.peak_processes >= 3, "the services' processes are not seen"
    sampler.start()

    t0 = time.monotonic()
    sets = dep.gql(PARTITION_SETS, repositorySelector=REPOSITORY_SELECTOR, job=JOB)["partitionSetsOrError"]
    name = next(s["name"] for s in sets["results"] if s["pipelineName"] == JOB)
    launched = dep.gql(LAUNCH_BACKFILL, params={
        "selector": {"partitionSetName": name, "repositorySelector": REPOSITORY_SELECTOR},
        "partitionNames": OUVRAGES, "title": "load: 50 ouvrages"})["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    def all_done():
        records = dep.records(**{BACKFILL_TAG: backfill_id})
        failed = [r.dagster_run.tags.get(PARTITION_TAG) for r in records if r.dagster_run.status in FAILED]
        if failed:
            raise E2EFailure(f"runs failed for {failed}")
        ok = [r for r in records if r.dagster_run.status == dg.DagsterRunStatus.SUCCESS]
        return records if len(ok) == len(OUVRAGES) else None

    try:
        records = dep.wait("50 backfill runs succeed", all_done, timeout=2000, interval=2)
    finally:
        sampler.stop()
    duration = time.monotonic() - t0

    # every ouvrage: one run, one publication, by that run
    by_key = {}
    for r in records:
        key = r.dagster_run.tags[PARTITION_TAG]
        assert key not in by_key, f"{key} ran twice"
        by_key[key] = r.dagster_run.run_id
    assert sorted(by_key) == OUVRAGES
    publications = instance.fetch_materializations(dg.AssetKey("ouvrage_publication"), limit=1000).records
    published_by = {}
    for p in publications:
        key = p.partition_key
        assert key not in published_by, f"{key} published twice"
        published_by[key] = p.run_id
    assert published_by == by_key
    for key in OUVRAGES:
        m = manifest(s3, key)
        assert m["run_id"] == by_key[key] and m["pages"] >= 1, (key, m)
    assert not overlaps(records), run_table(records)
    assert max_concurrency(records) == 2, run_table(records)  # the limit held, and was used

    figures = {"ouvrages": len(OUVRAGES), "pages_each": PAGES, "seconds": round(duration, 1),
               "runs_per_minute": round(len(OUVRAGES) / duration * 60, 1),
               "peak_total_rss_mb": round(sampler.peak_total_mb), "peak_process_rss_mb": round(sampler.peak_process_mb),
               "peak_processes": sampler.peak_processes}
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(json.dumps(figures, indent=1))
    print(f"[e2e] load: {figures}")
    assert sampler.peak_total_mb < MAX_TOTAL_MB and sampler.peak_process_mb < MAX_PROCESS_MB, figures
