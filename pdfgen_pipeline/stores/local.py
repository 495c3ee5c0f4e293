"""A store in a local directory (the default for development and `make demo`)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from pdfgen_pipeline.stores.base import ObjectInfo, StoreError, safe_key, sha256_file


class LocalStore:
    """Objects are files below `root`; the ETag is `<mtime_ns>-<size>` (cheap, changes on rewrite)."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        p = (self.root / safe_key(key)).resolve()
        if p != self.root and not p.is_relative_to(self.root):
            raise StoreError(f"{self.url}: key {key!r} resolves outside the store")
        return p

    def _info(self, key: str, st: os.stat_result) -> ObjectInfo:
        return ObjectInfo(key, st.st_size, f"{st.st_mtime_ns:x}-{st.st_size:x}",
                          datetime.fromtimestamp(st.st_mtime, UTC))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        base = self._path(prefix) if prefix else self.root
        start = base if base.is_dir() else base.parent
        if not start.is_dir():
            return
        out = []
        for dirpath, dirnames, filenames in os.walk(start, followlinks=False):
            dirnames.sort()
            for name in filenames:
                path = Path(dirpath) / name
                if path.is_symlink():
                    continue
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    out.append(self._info(key, path.stat()))
        yield from sorted(out, key=lambda i: i.key)

    def list_dirs(self, prefix: str = "") -> list[str]:
        base = self._path(prefix) if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(d.name for d in base.iterdir() if d.is_dir() and not d.is_symlink())

    def stat(self, key: str) -> ObjectInfo | None:
        p = self._path(key)
        if not p.is_file():
            return None
        return self._info(safe_key(key), p.stat())

    def read_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"{self.url}: no object {key!r}") from None

    def write_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, p)  # readers never see a half-written file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def upload_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        p = self._path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp-")
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def download_file(self, key: str, path: Path) -> None:
        src = self._path(key)
        if not src.is_file():
            raise StoreError(f"{self.url}: no object {key!r}")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, path)

    def copy(self, src_key: str, dst_key: str) -> None:
        self.upload_file(dst_key, self._path(src_key))

    def delete(self, key: str) -> None:
        p = self._path(key)
        p.unlink(missing_ok=True)
        parent = p.parent  # like S3, a "folder" exists only while it holds objects
        while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent

    def sha256(self, key: str) -> str:
        src = self._path(key)
        if not src.is_file():
            raise StoreError(f"{self.url}: no object {key!r}")
        return sha256_file(src)

    def location(self, key: str) -> str:
        return self._path(key).as_uri()
