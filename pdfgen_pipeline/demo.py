"""`make demo`: render every sample ouvrage of the bundled referentiel into `var/demo/`."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from pdfgen_pipeline.referentiel import list_ouvrages
from pdfgen_pipeline.render.book import MAIN_PDF, render_ouvrage

REPO = Path(__file__).resolve().parent.parent
REFERENTIEL = REPO / "examples" / "referentiel"


def main() -> int:
    """Render the samples; print where the files are."""
    out_root = REPO / "var" / "demo"
    t0 = time.perf_counter()
    for key in list_ouvrages(REFERENTIEL):
        print(f"== {key}", flush=True)
        report = render_ouvrage(REFERENTIEL / key, out_root / key, echo=sys.stdout)
        print(f"   {len(report['warnings'])} warnings; report: {out_root / key / 'report.json'}")
    print(f"\nDemo done in {time.perf_counter() - t0:.1f} s. PDFs:")
    for pdf in sorted(out_root.glob(f"*/{MAIN_PDF}")):
        print(f"  {pdf}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
