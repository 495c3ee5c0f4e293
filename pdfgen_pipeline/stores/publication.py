"""Publishing a generation into the generated store (section 2 of the reference).

Files are first uploaded under `<ouvrage>/.staging/<run>/` and checked (size and sha256), the
files of the previous generation are copied to `<ouvrage>/history/<timestamp>/` (5 kept), the
staged files are promoted to their published names, and `<ouvrage>/manifest.json` (files, sizes,
checksums, source version, run, date) is written last: a consumer that reads the manifest first
always finds the files it lists. A failure before promotion leaves the previous set untouched.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pdfgen_pipeline.ouvrage.keys import validate_ouvrage_key
from pdfgen_pipeline.stores.base import Store, StoreError, guess_content_type, join_key

MANIFEST = "manifest.json"
STAGING = ".staging"
HISTORY = "history"
HISTORY_KEEP = 5


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Published:
    """What a publication wrote."""

    key: str
    manifest: dict
    locations: dict[str, str]  # file name → URL


def read_manifest(store: Store, key: str) -> dict | None:
    """The published manifest of ouvrage `key`, or None when nothing is published (or it is unreadable)."""
    if store.stat(join_key(key, MANIFEST)) is None:
        return None
    try:
        return json.loads(store.read_bytes(join_key(key, MANIFEST)))
    except (ValueError, StoreError):
        return None


def publish(store: Store, key: str, files: dict[str, Path], *, source_version: str, run_id: str,
            extra: dict | None = None, now: datetime | None = None) -> Published:
    """Publish `files` (published name → local path) for ouvrage `key`; see the module docstring."""
    key = validate_ouvrage_key(key)
    now = now or datetime.now(UTC)
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    staging = join_key(key, STAGING, run_id)
    entries = {}
    for name, path in sorted(files.items()):
        digest = sha256_file(path)
        staged = join_key(staging, name)
        store.upload_file(staged, path, guess_content_type(name))
        info = store.stat(staged)
        size = path.stat().st_size
        if info is None or info.size != size:
            raise StoreError(f"{store.location(staged)}: staged size {info.size if info else None} != {size}")
        entries[name] = {"size": size, "sha256": digest, "content_type": guess_content_type(name)}
    previous = read_manifest(store, key)
    if previous:
        for name in previous.get("files", {}):
            src = join_key(key, name)
            if store.stat(src) is not None:
                store.copy(src, join_key(key, HISTORY, stamp, name))
        store.write_bytes(join_key(key, HISTORY, stamp, MANIFEST), json.dumps(previous, indent=1).encode(),
                          "application/json")
    for name in entries:
        store.copy(join_key(staging, name), join_key(key, name))
    manifest = {"ouvrage": key, "files": entries, "source_version": source_version, "run_id": run_id,
                "published_at": now.isoformat(timespec="seconds"), **(extra or {})}
    store.write_bytes(join_key(key, MANIFEST), json.dumps(manifest, indent=1, ensure_ascii=False).encode(),
                      "application/json")
    for name in entries:
        store.delete(join_key(staging, name))
    if previous:
        for stale in set(previous.get("files", {})) - set(entries):  # e.g. archive.zip no longer needed
            store.delete(join_key(key, stale))
    _prune_history(store, key)
    return Published(key, manifest, {name: store.location(join_key(key, name)) for name in entries})


def _prune_history(store: Store, key: str) -> None:
    generations = store.list_dirs(join_key(key, HISTORY))
    for old in generations[:-HISTORY_KEEP]:
        for info in list(store.list(join_key(key, HISTORY, old) + "/")):
            store.delete(info.key)


def published_keys(store: Store) -> list[str]:
    """Ouvrages that have a manifest in the generated store."""
    return [d for d in store.list_dirs("") if not d.startswith(".") and store.stat(join_key(d, MANIFEST))]
