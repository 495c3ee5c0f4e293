"""Where bytes live: one small interface over a local directory or an S3 bucket/prefix.

Keys are relative, `/`-separated, and checked (`safe_key`): no `..`, no absolute path, no
backslash or control character, so a hostile referentiel cannot make us read or write elsewhere.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

_BAD = re.compile(r"[\x00-\x1f\x7f\\]")


class UnsafeKeyError(ValueError):
    """A store key that could escape the store (`..`, absolute, control characters)."""


class StoreError(RuntimeError):
    """A store operation failed; `str()` names the store URL and the key. `permanent` is true when trying
    again cannot help (access denied, missing bucket): callers then fail at once instead of retrying."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


def safe_key(key: str) -> str:
    """Return `key` normalised (no leading `/`, no empty parts) or raise `UnsafeKeyError`."""
    if not isinstance(key, str) or _BAD.search(key) or key.startswith("/"):
        raise UnsafeKeyError(f"unsafe store key {key!r}")
    parts = [p for p in key.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise UnsafeKeyError(f"unsafe store key {key!r}: '..' is not allowed")
    return "/".join(parts) + ("/" if key.endswith("/") and parts else "")


def hash_stream(h, stream: BinaryIO) -> None:
    """Feed everything `stream` yields to the hash object `h`, 1 MiB at a time."""
    for chunk in iter(lambda: stream.read(1 << 20), b""):
        h.update(chunk)


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        hash_stream(h, f)
    return h.hexdigest()


def join_key(*parts: str) -> str:
    """Join key parts with `/` and check the result."""
    return safe_key("/".join(p.strip("/") for p in parts if p))


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object: key relative to the store, size, ETag (or equivalent) and modification time."""

    key: str
    size: int
    etag: str
    last_modified: datetime


@runtime_checkable
class Store(Protocol):
    """A flat key → bytes store (local directory or S3 prefix)."""

    url: str

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object under `prefix`, recursively, in key order."""
        ...

    def list_dirs(self, prefix: str = "") -> list[str]:
        """The immediate sub-"folders" of `prefix` (names only)."""
        ...

    def stat(self, key: str) -> ObjectInfo | None:
        """The object's info, or None when absent."""
        ...

    def read_bytes(self, key: str) -> bytes: ...

    def write_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None: ...

    def upload_file(self, key: str, path: Path, content_type: str | None = None) -> None: ...

    def download_file(self, key: str, path: Path) -> None: ...

    def delete(self, key: str) -> None: ...

    def copy(self, src_key: str, dst_key: str) -> None:
        """Copy an object inside the store (server side on S3)."""
        ...

    def sha256(self, key: str) -> str:
        """Hex sha256 of the object as stored (on S3 the checksum the server verified at upload, else the
        object read back), to check an upload before it is published."""
        ...

    def location(self, key: str) -> str:
        """A URL naming the object (file:// or s3://), for people and metadata."""
        ...


def download_prefix(store: Store, prefix: str, dest: Path, *, skip=lambda rel: False) -> list[ObjectInfo]:
    """Copy every object under `prefix` into `dest` (keys relative to `prefix`) unless `skip(rel)`;
    returns what was copied. S3 "folder" markers (keys ending in `/`) are skipped; a listed key that is
    not a plain relative path (`..`, empty part, leading `/`) raises `UnsafeKeyError` before anything
    is written: `dest / "/abs"` would be `/abs`."""
    copied = []
    base = prefix.rstrip("/") + "/" if prefix else ""
    for info in store.list(base):
        rel = info.key[len(base):]
        if not rel or rel.endswith("/") or skip(rel):
            continue
        try:
            plain = safe_key(rel) == rel
        except UnsafeKeyError:
            plain = False
        if not plain:
            raise UnsafeKeyError(f"{store.url}: unsafe key {info.key!r} in the listing: not a plain relative "
                                 "path ('..', empty part or leading '/'); remove or rename this object")
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        store.download_file(info.key, target)
        copied.append(info)
    return copied


def upload_tree(store: Store, prefix: str, src: Path) -> list[str]:
    """Upload every file below `src` under `prefix`; returns the keys written."""
    keys = []
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        key = join_key(prefix, path.relative_to(src).as_posix())
        store.upload_file(key, path, guess_content_type(path.name))
        keys.append(key)
    return keys


_TYPES = {".pdf": "application/pdf", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".xml": "application/xml",
          ".json": "application/json", ".html": "text/html; charset=utf-8", ".log": "text/plain; charset=utf-8",
          ".zip": "application/zip", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png"}


def guess_content_type(name: str) -> str:
    """Content type for the files we publish (served as they are by S3 or a web server)."""
    return _TYPES.get(Path(name).suffix.lower(), "application/octet-stream")
