"""Open a store from its URL: `s3://bucket[/prefix]` or a local path."""

from __future__ import annotations

from pathlib import Path

from pdfgen_pipeline.stores.base import Store
from pdfgen_pipeline.stores.local import LocalStore
from pdfgen_pipeline.stores.s3 import S3Store


def open_store(url: str, *, s3_client=None, base_dir: Path | None = None) -> Store:
    """A store for `url`; a relative local path is taken relative to `base_dir` (default: CWD)."""
    if url.startswith("s3://"):
        return S3Store.from_url(url, s3_client)
    if "://" in url and not url.startswith("file://"):
        raise ValueError(f"unsupported store URL {url!r}: use s3://bucket[/prefix] or a local path")
    path = Path(url.removeprefix("file://"))
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return LocalStore(path)
