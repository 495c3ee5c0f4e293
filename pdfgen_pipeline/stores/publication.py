"""Publishing a generation into the generated store (section 2 of the reference).

Files are first uploaded under `<ouvrage>/.staging/<run>/` and checked (size, and the sha256 the store
holds: on S3 the checksum the server verified at upload). Then a
promotion intent `.staging/<run>/READY.json` (the new manifest) is written: from that point on the
generation is complete and verified. The files of the previous generation are copied to
`<ouvrage>/history/<timestamp>/` (5 kept), the staged files are promoted to their published names
(server-side copies, each object replaced at once), and `<ouvrage>/manifest.json` (files, sizes,
checksums, source version, run, date) is written last; files of the previous generation that the new
one does not have (an `archive.zip`) are removed after it.

A failure (or `kill -9`) before the intent leaves the previous set untouched; the staged files of
that attempt are removed by the next publication. A failure after it, during the promotion, is
rolled forward by the next publication of the ouvrage (`recover_interrupted`), which finishes
promoting the verified generation before anything else: the published names never stay a mix of
two generations, and the manifest always describes the files beside it once a publication ends.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pdfgen_pipeline.ouvrage.keys import validate_ouvrage_key
from pdfgen_pipeline.stores.base import Store, StoreError, guess_content_type, join_key, sha256_file

MANIFEST = "manifest.json"
STAGING = ".staging"
READY = "READY.json"
HISTORY = "history"
HISTORY_KEEP = 5


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
    recover_interrupted(store, key, keep=run_id)
    staging = join_key(key, STAGING, run_id)
    entries = {}
    for name, path in sorted(files.items()):
        digest = sha256_file(path)
        staged = join_key(staging, name)
        store.upload_file(staged, path, guess_content_type(name))
        size = path.stat().st_size
        stored = store.sha256(staged)  # one request on S3; a different size gives a different sha256 too
        if stored != digest:
            raise StoreError(f"{store.location(staged)}: staged sha256 {stored} != {digest} of {path.name} "
                             f"({size} bytes)")
        entries[name] = {"size": size, "sha256": digest, "content_type": guess_content_type(name)}
    manifest = {"ouvrage": key, "files": entries, "source_version": source_version, "run_id": run_id,
                "published_at": now.isoformat(timespec="seconds"), **(extra or {})}
    # the promotion intent; the history folder is chosen now, so that a resumed promotion writes the same one
    intent = {"manifest": manifest, "history": now.strftime("%Y%m%dT%H%M%S%fZ"), "history_saved": False}
    store.write_bytes(join_key(staging, READY), _json(intent), "application/json")
    _promote(store, key, run_id, intent)
    return Published(key, manifest, {name: store.location(join_key(key, name)) for name in entries})


def recover_interrupted(store: Store, key: str, *, keep: str | None = None) -> list[str]:
    """Finish the promotion of ouvrage `key` that a dead publication left half done (roll forward), and remove
    the staged files of attempts that never reached their intent (except run `keep`'s). Returns what it did."""
    done = []
    runs = [d for d in store.list_dirs(join_key(key, STAGING)) if d != keep]
    intents = {}
    for run in runs:
        try:
            intents[run] = json.loads(store.read_bytes(join_key(key, STAGING, run, READY)))
        except (StoreError, ValueError):
            continue  # no intent (or unreadable): an upload that never finished
    current = read_manifest(store, key) or {}
    latest = max(intents, key=lambda r: intents[r].get("manifest", {}).get("published_at", ""), default=None)
    if latest is not None and current.get("run_id") != latest:
        _promote(store, key, latest, intents[latest])
        done.append(f"rolled forward the promotion of run {latest}")
    elif current:  # a publication killed after its manifest may have left the previous generation's extra files
        done.extend(f"removed {name}, not in the manifest" for name in _remove_unlisted(store, key, current))
    for run in runs:
        if run != latest or current.get("run_id") == latest:
            for info in list(store.list(join_key(key, STAGING, run) + "/")):
                store.delete(info.key)
            done.append(f"removed the staged files of run {run}")
    return done


def _promote(store: Store, key: str, run_id: str, intent: dict) -> None:
    """Previous generation to history (once: the intent records it), staged files to their published names,
    manifest last, staging removed. Safe to run again after an interruption at any point."""
    staging = join_key(key, STAGING, run_id)
    manifest = intent["manifest"]
    entries = manifest["files"]
    previous = read_manifest(store, key)
    if previous and previous.get("run_id") != run_id and not intent.get("history_saved"):
        # nothing published has changed yet: the files beside the manifest are still the previous generation's
        stamp = intent["history"]
        for name in previous.get("files", {}):
            src = join_key(key, name)
            if store.stat(src) is not None:
                store.copy(src, join_key(key, HISTORY, stamp, name))
        store.write_bytes(join_key(key, HISTORY, stamp, MANIFEST), json.dumps(previous, indent=1).encode(),
                          "application/json")
        intent = {**intent, "history_saved": True}
        store.write_bytes(join_key(staging, READY), _json(intent), "application/json")
    for name in entries:
        store.copy(join_key(staging, name), join_key(key, name))
    store.write_bytes(join_key(key, MANIFEST), _json(manifest), "application/json")
    for name in entries:
        store.delete(join_key(staging, name))
    store.delete(join_key(staging, READY))
    _remove_unlisted(store, key, manifest)  # e.g. an archive.zip the new generation no longer has
    _prune_history(store, key)


def _remove_unlisted(store: Store, key: str, manifest: dict) -> list[str]:
    """Delete the files beside `<key>/manifest.json` that it does not list (left by an older generation);
    `history/` and `.staging/` are not touched. Returns their names."""
    keep = {*manifest.get("files", {}), MANIFEST}
    stale = [info.key.rsplit("/", 1)[1] for info in store.list(key + "/") if info.key.count("/") == 1]
    stale = [name for name in stale if name not in keep]
    for name in stale:
        store.delete(join_key(key, name))
    return stale


def _json(value: dict) -> bytes:
    return json.dumps(value, indent=1, ensure_ascii=False).encode()


def _prune_history(store: Store, key: str) -> None:
    generations = store.list_dirs(join_key(key, HISTORY))
    for old in generations[:-HISTORY_KEEP]:
        for info in list(store.list(join_key(key, HISTORY, old) + "/")):
            store.delete(info.key)


def published_keys(store: Store) -> list[str]:
    """Ouvrages that have a manifest in the generated store."""
    return [d for d in store.list_dirs("") if not d.startswith(".") and store.stat(join_key(d, MANIFEST))]
