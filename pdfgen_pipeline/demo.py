"""`make demo`: the whole pipeline through Dagster's CLI on the embedded defaults.

Local referentiel (examples/referentiel), SQLite Dagster instance in var/dagster_home, generated
and artifact stores in var/. Registers the ouvrages, materializes every one and the catalogue,
and prints where the PDFs and index.html are.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from pdfgen_pipeline.referentiel import list_ouvrages

REPO = Path(__file__).resolve().parent.parent
VAR = REPO / "var"
MODULE = ["-m", "pdfgen_pipeline.definitions"]


def demo_env() -> dict[str, str]:
    """The environment of the demo: a persistent local instance and the embedded defaults."""
    home = VAR / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "deploy" / "dagster-local.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    for name in ("PDFGEN_REFERENTIEL_URL", "PDFGEN_PREPARATION_URL", "PDFGEN_GENERATED_URL", "PDFGEN_ARTIFACTS_URL"):
        env.pop(name, None)  # the embedded defaults, whatever the shell has
    return env


def dagster(*args: str, env: dict[str, str]) -> None:
    """Run one Dagster CLI command, echoing it; stop the demo if it fails."""
    cmd = [str(Path(sys.executable).parent / "dagster"), *args]
    print("$ dagster " + " ".join(args), flush=True)
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"demo: `dagster {' '.join(args)}` failed (exit {proc.returncode})")


def main() -> int:
    """Discover, publish every sample ouvrage, refresh the catalogue; print where the files are."""
    env = demo_env()
    t0 = time.perf_counter()
    dagster("job", "execute", *MODULE, "-j", "discover_ouvrages", env=env)
    keys = list_ouvrages(REPO / "examples" / "referentiel")
    for key in keys:
        dagster("asset", "materialize", *MODULE, "--select", "group:ouvrages", "--partition", key, env=env)
    dagster("asset", "materialize", *MODULE, "--select", "catalogue", env=env)
    generated = VAR / "generated"
    print(f"\nDemo done in {time.perf_counter() - t0:.0f} s (Dagster instance: {env['DAGSTER_HOME']}).")
    for key in keys:
        for pdf in sorted((generated / key).glob("*.pdf")):
            print(f"  {pdf}")
    print(f"  catalogue: {generated / 'index.html'}")
    print("Browse the runs and assets with `make dev` (Dagster UI on http://127.0.0.1:3000).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
