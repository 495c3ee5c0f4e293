#!/usr/bin/env python3
"""Capacity plan: the nightly regeneration of a referentiel on 1, 4 and 20 run pods, and how large a
referentiel one sensor can watch, computed from figures measured by `make bench` (defaults below; pass
others with the options). Prints the Markdown tables of `docs/scaling.md`.

usage: bench/capacity.py [--ouvrages 60] [--pages 400] [--pods 1 4 20] [--pod-start 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field

#: Measured on this project's machine class (2 cores, 24 GiB), `make bench` and its scripts, 2026-12-04, medians
#: of 3 runs (scaling and memory: commit "the parent imports no layout library"; backfill: the `make bench` of
#: commit "PreparedChild"; sensor: the `make bench` of commit "running heads", the sensor code unchanged since).
MEASURED = {
    # bench/scaling.py: synthetic ouvrages, (pages, seconds) of one render using the 2 cores of a run
    "scaling": [(54, 4.7), (197, 7.9), (776, 27.8)],
    # bench/backfill_throughput.py: 20 ouvrages of ~100 pages, one run at a time through the daemon
    "backfill_runs": 20, "backfill_pages": 1994, "backfill_seconds_1_at_a_time": 323.9,
    "backfill_seconds_2_at_once": 168.8,
    # bench/render_c22.py and bench/scaling.py: largest resident set of one process of a render
    "peak_rss_mb_306_pages": 130, "peak_rss_mb_776_pages": 268,
    # bench/sensor_cost.py: 10,000 objects in the moto server; one tick against the raw paginated listing
    "listing_ms_per_1000_objects": 242, "tick_over_listing": 1.02,
}
SENSOR_INTERVAL_S = 60  # minimum_interval_seconds of referentiel_production_sensor
SENSOR_BUDGET = 0.5  # a tick should use at most half its interval (S3 latency varies, ticks must not pile up)
OBJECTS_PER_OUVRAGE = 20  # the real C2.2 ouvrage: XML, illustrations and tables


@dataclass
class Plan:
    """The figures of the plan (seconds, pages, MB)."""

    ouvrages: int
    pages: int
    render_fixed_s: float
    render_s_per_page: float
    run_overhead_s: float
    pod_start_s: float
    run_s: float
    pages_per_s_per_core: float
    two_runs_on_one_machine_gain: float
    pods: dict[int, float] = field(default_factory=dict)  # pods → wall seconds
    sensor_ms_per_1000: float = 0.0
    sensor_max_objects: int = 0
    peak_rss_mb: float = 0.0


def fit_line(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares `y = a + b x`; returns (a, b)."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    b = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    return my - b * mx, b


def plan(measured: dict, *, ouvrages: int, pages: int, pods: list[int], pod_start_s: float) -> Plan:
    """The capacity plan from measured figures: a run is pod start + run overhead + render(pages); the queue
    runs one per pod at a time, in waves of `pods` runs (equal ouvrages)."""
    fixed, per_page = fit_line(measured["scaling"])
    render = fixed + per_page * pages
    avg_pages = measured["backfill_pages"] / measured["backfill_runs"]
    per_run_1 = measured["backfill_seconds_1_at_a_time"] / measured["backfill_runs"]
    overhead = max(0.0, per_run_1 - (fixed + per_page * avg_pages))
    run = pod_start_s + overhead + render
    rss = measured["peak_rss_mb_306_pages"] + (measured["peak_rss_mb_776_pages"] - measured["peak_rss_mb_306_pages"]) \
        * (pages - 306) / (776 - 306)
    ms_per_1000 = measured["listing_ms_per_1000_objects"] * measured["tick_over_listing"]
    result = Plan(ouvrages=ouvrages, pages=pages, render_fixed_s=fixed, render_s_per_page=per_page,
                  run_overhead_s=overhead, pod_start_s=pod_start_s, run_s=run,
                  pages_per_s_per_core=pages / render / 2,
                  two_runs_on_one_machine_gain=measured["backfill_seconds_1_at_a_time"]
                  / measured["backfill_seconds_2_at_once"],
                  sensor_ms_per_1000=ms_per_1000,
                  sensor_max_objects=int(SENSOR_INTERVAL_S * SENSOR_BUDGET * 1000 / ms_per_1000 * 1000),
                  peak_rss_mb=max(measured["peak_rss_mb_306_pages"], rss))
    for n in pods:
        result.pods[n] = math.ceil(ouvrages / n) * run
    return result


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    return f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def markdown(p: Plan) -> str:
    """The tables of docs/scaling.md."""
    render = p.run_s - p.run_overhead_s - p.pod_start_s
    lines = [
        f"Inputs (measured): one render of a {p.pages}-page ouvrage on a 2-CPU run = "
        f"{p.render_fixed_s:.1f} s + {p.render_s_per_page:.4f} s/page = {render:.1f} s"
        f" ({p.pages_per_s_per_core:.1f} pages/s per core); run overhead (launch, source, thumbnail, metadata, "
        f"publication) {p.run_overhead_s:.1f} s; pod start {p.pod_start_s:.0f} s (assumed: image cached on the node); "
        f"peak memory of one render process ~{p.peak_rss_mb:.0f} MB.",
        "",
        f"| run pods (2 CPU, 1.5 GiB each) | runs at once | nightly regeneration of {p.ouvrages} × {p.pages} pages |",
        "|---|---|---|",
    ]
    for n, wall in p.pods.items():
        lines.append(f"| {n} | {n} | {_duration(wall)} ({math.ceil(p.ouvrages / n)} waves of {p.run_s:.0f} s) |")
    lines += [
        "",
        f"Sensor: {p.sensor_ms_per_1000:.0f} ms per 1,000 objects per tick (paginated listing; a tick costs "
        f"{MEASURED['tick_over_listing']:.2f}× the raw listing). Within {SENSOR_BUDGET:.0%} of its "
        f"{SENSOR_INTERVAL_S} s interval, one sensor watches about **{p.sensor_max_objects:,} objects**, i.e. "
        f"~{p.sensor_max_objects // OBJECTS_PER_OUVRAGE:,} ouvrages of {OBJECTS_PER_OUVRAGE} objects.",
        "",
        f"On one 2-core machine, 2 runs at once give {p.two_runs_on_one_machine_gain:.2f}× the throughput of one "
        "(their light steps overlap the other's render).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ouvrages", type=int, default=60)
    ap.add_argument("--pages", type=int, default=400)
    ap.add_argument("--pods", type=int, nargs="+", default=[1, 4, 20])
    ap.add_argument("--pod-start", type=float, default=30.0, help="seconds for a run pod to start (assumed)")
    ap.add_argument("--measured", type=str, help="JSON file overriding figures of MEASURED")
    ap.add_argument("--json", action="store_true", help="print the plan as JSON")
    args = ap.parse_args(argv)
    measured = dict(MEASURED)
    if args.measured:
        with open(args.measured, encoding="utf-8") as f:
            measured.update(json.load(f))
    p = plan(measured, ouvrages=args.ouvrages, pages=args.pages, pods=args.pods, pod_start_s=args.pod_start)
    print(json.dumps(asdict(p), indent=1) if args.json else markdown(p))
    return 0


if __name__ == "__main__":
    sys.exit(main())
