"""The artifact store: what one pipeline step hands to the next, as zip files and plain files.

Layout: `<ouvrage>/<source content hash>/<code version>/<step>...`, so the same source rendered
by the same code lands at the same place (a step finding its output there need not redo it).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from pdfgen_pipeline.stores.base import Store, join_key


def artifact_prefix(ouvrage: str, content_hash: str, code_version: str) -> str:
    """Where the artifacts of one (ouvrage, source, code) combination live."""
    return join_key(ouvrage, content_hash, code_version)


def upload_zip(store: Store, key: str, src_dir: Path, tmp_dir: Path) -> int:
    """Zip `src_dir` and upload it as `key`; returns the zip's size."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    archive = tmp_dir / (Path(key).name or "artifact.zip")
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for path in sorted(p for p in src_dir.rglob("*") if p.is_file()):
            z.write(path, arcname=path.relative_to(src_dir).as_posix())
    store.upload_file(key, archive, "application/zip")
    size = archive.stat().st_size
    archive.unlink()
    return size


def download_zip(store: Store, key: str, dest_dir: Path) -> Path:
    """Download the zip `key` and extract it into `dest_dir` (members escaping it are refused)."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    archive = dest_dir.parent / f".{dest_dir.name}.zip"
    store.download_file(key, archive)
    root = dest_dir.resolve()
    with zipfile.ZipFile(archive) as z:
        for member in z.infolist():
            target = (dest_dir / member.filename).resolve()
            if not target.is_relative_to(root):
                raise ValueError(f"{store.location(key)}: member {member.filename!r} escapes the archive")
        z.extractall(dest_dir)
    archive.unlink()
    return dest_dir
