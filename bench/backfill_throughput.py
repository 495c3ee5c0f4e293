#!/usr/bin/env python3
"""Benchmark: a backfill of synthetic ouvrages through the real `dagster-daemon`, 1 then 2 runs at once.

For each concurrency: a fresh SQLite Dagster instance whose `dagster.yaml` is deploy/dagster-local.yaml
with `max_concurrent_runs` set; local referentiel/generated/artifact stores (rendering is what is
measured, not S3); `dagster job backfill` of every partition of `publish_ouvrage`; the daemon launches
the runs (one process each). Throughput = published pages / (last run end − first run start).

usage: bench/backfill_throughput.py [--ouvrages 20] [--pages 100] [--concurrency 1,2]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
MODULE = ["-m", "pdfgen_pipeline.definitions"]


def instance_yaml(concurrency: int) -> str:
    """The local instance configuration with `concurrency` runs at once."""
    conf = yaml.safe_load((REPO / "deploy" / "dagster-local.yaml").read_text())
    conf["concurrency"]["runs"]["max_concurrent_runs"] = concurrency
    return yaml.safe_dump(conf)


def run_backfill(referentiel: Path, keys: list[str], concurrency: int, work: Path, timeout: float) -> dict:
    """Backfill every key with the daemon at `concurrency`; returns timings and pages."""
    import dagster as dg

    home = work / f"home{concurrency}"
    home.mkdir()
    (home / "dagster.yaml").write_text(instance_yaml(concurrency))
    env = {**os.environ, "DAGSTER_HOME": str(home), "PDFGEN_REFERENTIEL_URL": str(referentiel),
           "PDFGEN_PREPARATION_URL": str(referentiel), "PDFGEN_GENERATED_URL": str(work / f"generated{concurrency}"),
           "PDFGEN_ARTIFACTS_URL": str(work / f"artifacts{concurrency}")}
    os.environ.update(env)
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("ouvrages", keys)
    log = (work / f"daemon{concurrency}.log").open("w")
    daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", *MODULE], cwd=REPO, env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        t0 = time.time()
        subprocess.run([str(BIN / "dagster"), "job", "backfill", *MODULE, "-j", "publish_ouvrage", "--partitions",
                        ",".join(keys), "--noprompt"], cwd=REPO, env=env, check=True, capture_output=True)
        with dg.DagsterInstance.get() as instance:
            while True:
                records = instance.get_run_records(dg.RunsFilter(job_name="publish_ouvrage"))
                done = [r for r in records if r.dagster_run.status in (dg.DagsterRunStatus.SUCCESS,
                                                                       dg.DagsterRunStatus.FAILURE)]
                if len(done) == len(keys):
                    break
                if time.time() - t0 > timeout:
                    raise SystemExit(f"backfill at concurrency {concurrency}: {len(done)}/{len(keys)} runs done "
                                     f"after {timeout:.0f} s; see {log.name}")
                if daemon.poll() is not None:
                    raise SystemExit(f"dagster-daemon exited ({daemon.returncode}); see {log.name}")
                time.sleep(2)
            failed = [r.dagster_run.tags.get("dagster/partition") for r in done
                      if r.dagster_run.status != dg.DagsterRunStatus.SUCCESS]
            if failed:
                raise SystemExit(f"runs failed for {failed}; see {log.name}")
            starts = [r.start_time for r in done]
            ends = [r.end_time for r in done]
            pages = 0
            for key in keys:
                mats = instance.fetch_materializations(
                    dg.AssetRecordsFilter(asset_key=dg.AssetKey("ouvrage_pdf"), asset_partitions=[key]), limit=1)
                pages += int(mats.records[0].asset_materialization.metadata["pages"].value)
            run_s = sorted(e - s for s, e in zip(starts, ends, strict=True))
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
        log.close()
    wall = max(ends) - min(starts)
    return {"wall_s": wall, "pages": pages, "pages_per_s": pages / wall, "run_median_s": run_s[len(run_s) // 2],
            "submit_to_done_s": max(ends) - t0}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ouvrages", type=int, default=20)
    ap.add_argument("--pages", type=int, default=100)
    ap.add_argument("--concurrency", default="1,2")
    ap.add_argument("--timeout", type=float, default=1800)
    args = ap.parse_args()
    from pdfgen_pipeline.synthetic import write_ouvrage

    with tempfile.TemporaryDirectory(prefix="pdfgen-bench-backfill-") as tmp:
        work = Path(tmp)
        referentiel = work / "referentiel"
        keys = [f"syn{i:02d}" for i in range(args.ouvrages)]
        for i, key in enumerate(keys):
            write_ouvrage(referentiel, key, args.pages, seed=i)
        print(f"backfill throughput: {args.ouvrages} synthetic ouvrages of about {args.pages} pages, "
              "dagster-daemon + QueuedRunCoordinator, SQLite instance, local stores", flush=True)
        results = {}
        for c in (int(x) for x in args.concurrency.split(",")):
            r = run_backfill(referentiel, keys, c, work, args.timeout)
            results[c] = r
            print(f"  {c} run(s) at once: {r['wall_s']:6.1f} s  {r['pages']} pages  {r['pages_per_s']:.2f} pages/s  "
                  f"(median run {r['run_median_s']:.1f} s, submit→done {r['submit_to_done_s']:.1f} s)", flush=True)
        if 1 in results and len(results) > 1:
            for c, r in results.items():
                if c != 1:
                    gain = r["pages_per_s"] / results[1]["pages_per_s"]
                    print(f"  throughput {c} at once / 1 at a time: {gain:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
