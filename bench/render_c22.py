#!/usr/bin/env python3
"""Benchmark: `pdfgen render` of the real C2.2 ouvrage, median of N runs, each in a fresh process.

Prints wall time, peak RSS (of the render process and its children) and pages per second, and —
unless --no-baseline — the reference baseline (../shared/bench/naive_baseline.py) measured in
the same run, with the ratio. Skips cleanly when ../shared is absent.

usage: bench/render_c22.py [--shared ../shared] [--runs 3] [--no-baseline]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


CHILD = [sys.executable, str(REPO / "bench" / "measure_child.py")]


def run_measured(argv: list[str], out: Path) -> tuple[float, float, str]:
    """Run a job in a fresh process; return (wall seconds, its peak RSS in MB, its stdout)."""
    t = time.perf_counter()
    proc = subprocess.run([*CHILD, *argv, str(out)], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        sys.exit(f"failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr[-2000:]}")
    return wall, json.loads((out / "rss.json").read_text())["peak_rss_mb"], proc.stdout


def measure_ours(corpus: Path, runs: int) -> dict:
    walls, rss, pages = [], [], 0
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as out:
            wall, peak, _stdout = run_measured([str(corpus)], Path(out))
            pages = json.loads((Path(out) / "report.json").read_text("utf-8"))["counts"]["pages"]
            walls.append(wall)
            rss.append(peak)
    return {"wall_s": walls, "median_s": statistics.median(walls), "pages": pages,
            "peak_rss_mb": max(rss), "pages_per_s": pages / statistics.median(walls)}


def measure_baseline(shared: Path, corpus: Path, runs: int) -> dict:
    script = shared / "bench" / "naive_baseline.py"
    walls, pages, rss = [], 0, []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as out:
            wall, peak, stdout = run_measured(["--script", str(script), str(corpus)], Path(out))
            pages = json.loads(stdout.strip().splitlines()[-1])["pages"]
            rss.append(peak)
            walls.append(wall)
    return {"wall_s": walls, "median_s": statistics.median(walls), "pages": pages, "peak_rss_mb": max(rss)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    corpus = args.shared / "corpus" / "c22"
    if not (corpus / "xml" / "document.xml").is_file():
        print(f"skipped: {corpus} absent")
        return 0
    print(f"C2.2 render, median of {args.runs} (fresh process each run)", flush=True)
    ours = measure_ours(corpus, args.runs)
    print(f"  pdfgen render : {ours['median_s']:.1f} s  (runs: {', '.join(f'{w:.1f}' for w in ours['wall_s'])})  "
          f"{ours['pages']} pages  {ours['pages_per_s']:.1f} pages/s  peak RSS {ours['peak_rss_mb']:.0f} MB",
          flush=True)
    if not args.no_baseline and (args.shared / "bench" / "naive_baseline.py").is_file():
        base = measure_baseline(args.shared, corpus, args.runs)
        print(f"  naive baseline: {base['median_s']:.1f} s  (runs: {', '.join(f'{w:.1f}' for w in base['wall_s'])})  "
              f"{base['pages']} pages  peak RSS {base['peak_rss_mb']:.0f} MB", flush=True)
        print(f"  ratio baseline/ours: {base['median_s'] / ours['median_s']:.2f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
