"""Atomic publication under `kill -9` (issue 5, item 1): a publishing process is killed with SIGKILL at each
point of a publication into the moto S3 server; what consumers see is then checked, and the next publication
recovers. Before the promotion starts, the previous set is intact; once it has started, the next publication
rolls it forward; at no point after a publication (or recovery) ends do the manifest and the files disagree."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pdfgen_pipeline.stores.publication import HISTORY, MANIFEST, STAGING, publish, read_manifest, recover_interrupted
from pdfgen_pipeline.stores.s3 import S3Store

NAMES = ("document.pdf", "vignette.jpg", "stderr.log")

#: The child publishes generation 2 and SIGKILLs itself on the n-th call of a store method.
CHILD = """
import json, os, signal, sys
from pathlib import Path
from pdfgen_pipeline.stores.s3 import S3Store
from pdfgen_pipeline.stores.publication import publish

method, nth, url, files = sys.argv[1], int(sys.argv[2]), sys.argv[3], json.loads(sys.argv[4])
store = S3Store.from_url(url)
calls = 0
real = getattr(store, method)

def killing(*args, **kwargs):
    global calls
    calls += 1
    if calls == nth:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)

setattr(store, method, killing)
publish(store, "c99", {k: Path(v) for k, v in files.items()}, source_version="v2", run_id="run2")
print("not killed")
"""

# (method, n-th call, where that is) for a publication of 3 files over a previous generation of 3 files
BEFORE_PROMOTION = [("upload_file", 1, "first staged upload"), ("upload_file", 3, "last staged upload"),
                    ("write_bytes", 1, "the promotion intent"), ("copy", 1, "first copy to history/"),
                    ("write_bytes", 2, "history manifest"), ("write_bytes", 3, "intent update")]
DURING_PROMOTION = [("copy", 4, "first file promoted"), ("copy", 6, "last file promoted"),
                    ("write_bytes", 4, "the new manifest")]
AFTER_MANIFEST = [("delete", 1, "staging clean-up"), ("delete", 4, "intent removal")]


def generation(tmp: Path, n: int) -> dict[str, Path]:
    files = {}
    for name in NAMES:
        path = tmp / f"g{n}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"{name} of generation {n} ".encode() * (1000 * (NAMES.index(name) + 1)))
        files[name] = path
    return files


def consistent(store: S3Store, key: str = "c99") -> str | None:
    """The source version of what consumers see, when the manifest and the files agree; None otherwise."""
    manifest = read_manifest(store, key)
    if manifest is None:
        return None
    for name, entry in manifest["files"].items():
        data = store.read_bytes(f"{key}/{name}")
        if hashlib.sha256(data).hexdigest() != entry["sha256"] or len(data) != entry["size"]:
            return None
    return manifest["source_version"]


def history_consistent(store: S3Store, key: str = "c99") -> list[str]:
    """Source versions kept in history/, each checked against its own manifest."""
    versions = []
    for stamp in store.list_dirs(f"{key}/{HISTORY}"):
        manifest = json.loads(store.read_bytes(f"{key}/{HISTORY}/{stamp}/{MANIFEST}"))
        for name, entry in manifest["files"].items():
            data = store.read_bytes(f"{key}/{HISTORY}/{stamp}/{name}")
            assert hashlib.sha256(data).hexdigest() == entry["sha256"], (stamp, name)
        versions.append(manifest["source_version"])
    return versions


@pytest.mark.parametrize(("method", "nth", "where"), BEFORE_PROMOTION + DURING_PROMOTION + AFTER_MANIFEST,
                         ids=lambda v: v if isinstance(v, str) else None)
def test_kill_9_while_publishing(s3, tmp_path: Path, method: str, nth: int, where: str) -> None:
    store = S3Store.from_url(f"s3://{s3.buckets['generated']}")
    publish(store, "c99", generation(tmp_path, 1), source_version="v1", run_id="run1")
    assert consistent(store) == "v1"

    files = {k: str(v) for k, v in generation(tmp_path, 2).items()}
    proc = subprocess.run([sys.executable, "-c", CHILD, method, str(nth), store.url, json.dumps(files)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stdout, proc.stderr[-2000:])

    seen = consistent(store)
    if (method, nth, where) in BEFORE_PROMOTION:
        assert seen == "v1", f"killed at {where}: the previous set must be intact"
    elif (method, nth, where) in AFTER_MANIFEST:
        assert seen == "v2", f"killed at {where}: the new set is complete"
    # (killed during the promotion: the published names may mix generations until the recovery below)

    # what the next publication does first, alone: finish (roll forward) or discard the dead attempt
    recover_interrupted(store, "c99")
    expected = "v1" if (method, nth, where) in BEFORE_PROMOTION[:3] else "v2"
    assert consistent(store) == expected, where
    assert not list(store.list(f"c99/{STAGING}/")), "staged files left behind"
    assert history_consistent(store) == ([] if expected == "v1" else ["v1"])

    # and the next publication proper
    publish(store, "c99", generation(tmp_path, 3), source_version="v3", run_id="run3")
    assert consistent(store) == "v3"
    assert history_consistent(store) == (["v1"] if expected == "v1" else ["v1", "v2"])
    assert not list(store.list(f"c99/{STAGING}/"))
