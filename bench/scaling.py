#!/usr/bin/env python3
"""Benchmark: synthetic ouvrages of about 50, 200 and 800 pages, `render_ouvrage` in a fresh process
each run, median of N: seconds per page, peak RSS, and the 800/200 time ratio (linear growth: 4).
The sizes take turns (N rounds of 50, 200, 800), so that each meets the same machine: on a shared one,
speed drifts over minutes, and a size measured all at once would carry its drift into the ratio.

usage: bench/scaling.py [--pages 50,200,800] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from render_c22 import run_measured

from pdfgen_pipeline.synthetic import write_ouvrage


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", default="50,200,800")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    sizes = [int(x) for x in args.pages.split(",")]
    print(f"synthetic scaling series, median of {args.runs} (fresh process each run)", flush=True)
    walls: dict[int, list[float]] = {n: [] for n in sizes}
    rss: dict[int, list[float]] = {n: [] for n in sizes}
    pages: dict[int, int] = {}
    with tempfile.TemporaryDirectory(prefix="pdfgen-bench-scaling-") as tmp:
        folders = {n: write_ouvrage(Path(tmp) / "referentiel", f"syn{n}", n) for n in sizes}
        for _ in range(args.runs):
            for n in sizes:
                with tempfile.TemporaryDirectory(dir=tmp) as out:
                    wall, peak, _ = run_measured([str(folders[n])], Path(out))
                    pages[n] = json.loads((Path(out) / "report.json").read_text("utf-8"))["counts"]["pages"]
                walls[n].append(wall)
                rss[n].append(peak)
    medians = {n: statistics.median(w) for n, w in walls.items()}
    for n in sizes:
        print(f"  ~{n:4d} pages: {medians[n]:6.1f} s  (runs: {', '.join(f'{w:.1f}' for w in walls[n])})  "
              f"{pages[n]} pages  {medians[n] / pages[n]:.3f} s/page  peak RSS {max(rss[n]):.0f} MB", flush=True)
    if 200 in medians and 800 in medians:
        rounds = ", ".join(f"{b / a:.2f}" for a, b in zip(walls[200], walls[800], strict=True))
        print(f"  time ratio 800/200: {medians[800] / medians[200]:.2f} (ratio of the medians; round by round: "
              f"{rounds}; linear: 4, target <= 4.4)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
