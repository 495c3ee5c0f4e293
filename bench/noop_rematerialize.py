#!/usr/bin/env python3
"""Benchmark: re-materializing an ouvrage whose source and code are unchanged (no work twice).

The sample c99 is uploaded to a moto S3 server (real HTTP); the six ouvrage assets are materialized
once (rendered), then again N times in process on the same SQLite instance: each step finds its
saved result (content hash + code version) and renders nothing. Prints the first run, the median
re-run and its slowest steps.

usage: bench/noop_rematerialize.py [--runs 5] [--ouvrage c99]
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--ouvrage", default="c99")
    args = ap.parse_args()
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret",
                       "AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "eu-west-3", "AWS_ENDPOINT_URL_S3": endpoint,
                       "PDFGEN_REFERENTIEL_URL": "s3://bench-referentiel",
                       "PDFGEN_PREPARATION_URL": "s3://bench-referentiel",
                       "PDFGEN_GENERATED_URL": "s3://bench-generated", "PDFGEN_ARTIFACTS_URL": "s3://bench-artifacts"})
    try:
        import boto3
        import dagster as dg

        from pdfgen_pipeline.defs.assets import ouvrage_assets
        from pdfgen_pipeline.defs.io_managers import ArtifactPointerIOManager
        from pdfgen_pipeline.defs.partitions import OUVRAGES
        from pdfgen_pipeline.defs.resources import stores_from_env

        client = boto3.client("s3", endpoint_url=endpoint)
        for b in ("bench-referentiel", "bench-generated", "bench-artifacts"):
            client.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
        root = REPO / "examples" / "referentiel"
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            client.upload_file(str(path), "bench-referentiel", path.relative_to(root).as_posix())
        stores = stores_from_env()
        resources = {"stores": stores, "artifact_pointers": ArtifactPointerIOManager(stores=stores)}
        with dg.instance_for_test() as instance:
            instance.add_dynamic_partitions(OUVRAGES, [args.ouvrage])
            t = time.perf_counter()
            first = dg.materialize(ouvrage_assets, partition_key=args.ouvrage, instance=instance, resources=resources)
            first_s = time.perf_counter() - t
            assert first.success
            walls, steps = [], {}
            for _ in range(args.runs):
                t = time.perf_counter()
                again = dg.materialize(ouvrage_assets, partition_key=args.ouvrage, instance=instance,
                                       resources=resources)
                walls.append(time.perf_counter() - t)
                assert again.success
                metas = {m.asset_key.path[-1]: m.materialization.metadata
                         for m in again.get_asset_materialization_events()}
                assert all(m["reused"].value for name, m in metas.items() if "reused" in m), "something was redone"
                for ev in again.all_events:
                    if ev.event_type_value == "STEP_SUCCESS":
                        steps.setdefault(ev.step_key, []).append(ev.event_specific_data.duration_ms / 1000)
        print(f"no-op re-materialization of {args.ouvrage} (6 assets, S3 on moto, SQLite instance, in process)")
        print(f"  first materialization (renders): {first_s:.2f} s")
        print(f"  re-materialization, nothing changed: median {statistics.median(walls):.2f} s "
              f"(runs: {', '.join(f'{w:.2f}' for w in walls)}; target <= 2 s)")
        slow = sorted(((statistics.median(v), k) for k, v in steps.items()), reverse=True)
        print("  steps (median): " + ", ".join(f"{k} {s:.2f} s" for s, k in slow))
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
