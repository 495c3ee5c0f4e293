"""Run one measured job and record its own peak RSS (children included) in OUT/rss.json (for bench/).

usage: python bench/measure_child.py [--script SCRIPT] SOURCE OUT
"""

from __future__ import annotations

import json
import resource
import runpy
import sys
from pathlib import Path


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def main(argv: list[str]) -> int:
    """Render SOURCE into OUT with `render_ouvrage`, or run SCRIPT SOURCE OUT; then write rss.json."""
    if argv[0] == "--script":
        script, source, out = argv[1:4]
        sys.argv = [script, source, out]
        runpy.run_path(script, run_name="__main__")
    else:
        from pdfgen_pipeline.render.book import render_ouvrage

        source, out = argv[0:2]
        render_ouvrage(Path(source), Path(out))
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / "rss.json").write_text(json.dumps({"peak_rss_mb": round(_peak_mb(), 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
