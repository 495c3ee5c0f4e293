#!/usr/bin/env python3
"""Benchmark: `pdfgen render` of the real C2.2 ouvrage, median of N runs, each in a fresh process.

Prints wall time, peak RSS (of the render process and its children) and pages per second, and —
unless --no-baseline — the reference baseline (../shared/bench/naive_baseline.py) measured in
the same run, its runs alternating with ours, with the ratio. Skips cleanly when ../shared is absent.

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


def measure_ours(corpus: Path) -> tuple[float, float, int]:
    """One `render_ouvrage` of the corpus in a fresh process: (wall s, peak RSS MB, pages)."""
    with tempfile.TemporaryDirectory() as out:
        wall, peak, _stdout = run_measured([str(corpus)], Path(out))
        pages = json.loads((Path(out) / "report.json").read_text("utf-8"))["counts"]["pages"]
    return wall, peak, pages


def measure_baseline(script: Path, corpus: Path) -> tuple[float, float, int]:
    """One run of the reference baseline script in a fresh process: (wall s, peak RSS MB, pages)."""
    with tempfile.TemporaryDirectory() as out:
        wall, peak, stdout = run_measured(["--script", str(script), str(corpus)], Path(out))
        pages = json.loads(stdout.strip().splitlines()[-1])["pages"]
    return wall, peak, pages


def _runs(walls: list[float]) -> str:
    return ", ".join(f"{w:.1f}" for w in walls)


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
    script = args.shared / "bench" / "naive_baseline.py"
    baseline = not args.no_baseline and script.is_file()
    # ours and the baseline alternate, so that both meet the same machine (shared, noisy) over the benchmark
    print(f"C2.2 render, median of {args.runs} (fresh process each run"
          f"{', alternating with the baseline' if baseline else ''})", flush=True)
    ours, base = [], []
    for _ in range(args.runs):
        ours.append(measure_ours(corpus))
        if baseline:
            base.append(measure_baseline(script, corpus))
    walls = [w for w, _r, _p in ours]
    median = statistics.median(walls)
    pages = ours[0][2]
    print(f"  pdfgen render : {median:.1f} s  (runs: {_runs(walls)})  {pages} pages  {pages / median:.1f} pages/s  "
          f"peak RSS {max(r for _w, r, _p in ours):.0f} MB", flush=True)
    if baseline:
        base_walls = [w for w, _r, _p in base]
        base_median = statistics.median(base_walls)
        print(f"  naive baseline: {base_median:.1f} s  (runs: {_runs(base_walls)})  {base[0][2]} pages  "
              f"peak RSS {max(r for _w, r, _p in base):.0f} MB", flush=True)
        pairs = [b / o for o, b in zip(walls, base_walls, strict=True)]
        print(f"  ratio baseline/ours: {base_median / median:.2f}x faster (ratio of the medians; "
              f"run by run: {', '.join(f'{r:.2f}' for r in pairs)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
