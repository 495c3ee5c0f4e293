#!/usr/bin/env python3
"""Benchmark: cost of one tick of `referentiel_production_sensor` against the raw paginated listing.

A moto S3 server (real HTTP) holds a referentiel of OUVRAGES ouvrages / OBJECTS objects. In the same
run, alternately: the raw listing (boto3 `list_objects_v2` paginator over the bucket, keys only) and
one sensor tick (evaluated as the daemon does, with its cursor and the ouvrages already registered:
the steady state, nothing changed). Then a tick after one ouvrage changed, and a first tick without a
cursor (it reads the published manifests). Prints medians and the ratio tick / raw listing.

usage: bench/sensor_cost.py [--ouvrages 500] [--objects 10000] [--runs 7]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ouvrages", type=int, default=500)
    ap.add_argument("--objects", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()

    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret",
                       "AWS_REGION": "eu-west-3", "AWS_DEFAULT_REGION": "eu-west-3",
                       "AWS_ENDPOINT_URL_S3": endpoint, "PDFGEN_REFERENTIEL_URL": "s3://bench-referentiel",
                       "PDFGEN_GENERATED_URL": "s3://bench-generated",
                       "PDFGEN_ARTIFACTS_URL": "s3://bench-artifacts"})
    try:
        import boto3
        import dagster as dg

        from pdfgen_pipeline.defs.partitions import OUVRAGES
        from pdfgen_pipeline.defs.resources import stores_from_env
        from pdfgen_pipeline.defs.sensors import referentiel_production_sensor

        client = boto3.client("s3", endpoint_url=endpoint)
        for b in ("bench-referentiel", "bench-generated", "bench-artifacts"):
            client.create_bucket(Bucket=b, CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
        per = args.objects // args.ouvrages
        keys = [f"c{i:04d}" for i in range(args.ouvrages)]

        def put(k: str) -> None:
            client.put_object(Bucket="bench-referentiel", Key=f"{k}/xml/document.xml", Body=b"<document/>")
            for j in range(per - 1):
                client.put_object(Bucket="bench-referentiel", Key=f"{k}/illustrations/{j}.svg", Body=b"<svg/>")

        t = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(put, keys))
        print(f"sensor tick cost: {args.ouvrages} ouvrages, {args.ouvrages * per} objects in a moto S3 server "
              f"(filled in {time.perf_counter() - t:.0f} s); median of {args.runs}", flush=True)

        def raw_listing() -> int:
            n = 0
            for page in client.get_paginator("list_objects_v2").paginate(Bucket="bench-referentiel"):
                n += len(page.get("Contents", []))
            return n

        stores = stores_from_env()
        with dg.instance_for_test() as instance:
            def tick(cursor: str | None):
                with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"stores": stores}) as ctx:
                    return referentiel_production_sensor(ctx)

            t = time.perf_counter()
            first = tick(None)
            first_s = time.perf_counter() - t
            instance.add_dynamic_partitions(OUVRAGES, keys)
            cursor = first.cursor
            raw, ticks = [], []
            for _ in range(args.runs):
                t = time.perf_counter()
                n = raw_listing()
                raw.append(time.perf_counter() - t)
                t = time.perf_counter()
                result = tick(cursor)
                ticks.append(time.perf_counter() - t)
                assert not result.run_requests, "nothing changed: the tick must request no run"
            assert n == args.ouvrages * per
            client.put_object(Bucket="bench-referentiel", Key=f"{keys[7]}/xml/document.xml",
                              Body=b"<document></document>")
            changed = []
            for _ in range(args.runs):
                t = time.perf_counter()
                result = tick(cursor)
                changed.append(time.perf_counter() - t)
            assert [r.partition_key for r in result.run_requests] == [keys[7]]
        raw_m, tick_m, changed_m = (statistics.median(x) for x in (raw, ticks, changed))
        print(f"  raw paginated listing  : {raw_m * 1000:7.0f} ms  ({n} objects, "
              f"{raw_m * 1000 / (n / 1000):.0f} ms per 1,000 objects)")
        print(f"  sensor tick, no change : {tick_m * 1000:7.0f} ms  ratio tick/listing {tick_m / raw_m:.2f}x "
              f"(target <= 1.3x)")
        print(f"  sensor tick, 1 changed : {changed_m * 1000:7.0f} ms  ratio {changed_m / raw_m:.2f}x")
        print(f"  first tick, no cursor  : {first_s * 1000:7.0f} ms  (reads {args.ouvrages} published manifests; "
              "once, or after a lost cursor)")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
