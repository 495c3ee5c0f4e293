"""Hostile keys at the store level, on a real HTTP S3 server (moto): keys with `..` given to the store,
and hostile object keys found in the referentiel listing when an ouvrage is snapshotted."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from pdfgen_pipeline.ouvrage.keys import InvalidKeyError
from pdfgen_pipeline.referentiel import snapshot_ouvrage
from pdfgen_pipeline.stores.base import UnsafeKeyError
from pdfgen_pipeline.stores.local import LocalStore
from pdfgen_pipeline.stores.publication import publish
from pdfgen_pipeline.stores.s3 import S3Store
from pdfgen_pipeline_tests.hostile import watch

DOTDOT_KEYS = ["lf1/../../../etc/passwd", "../lf1/xml/document.xml", "lf1/xml/../../../x", "/etc/passwd",
               "lf1\\..\\..\\x"]


@pytest.fixture
def production(s3) -> S3Store:
    """The production referentiel bucket (the sample referentiel) as an S3Store."""
    return S3Store(s3.client, s3.buckets["production"])


def _bucket(s3, name: str) -> dict[str, str]:
    out = {}
    for page in s3.client.get_paginator("list_objects_v2").paginate(Bucket=s3.buckets[name]):
        out.update({o["Key"]: o["ETag"] for o in page.get("Contents", [])})
    return out


@pytest.mark.parametrize("key", DOTDOT_KEYS)
def test_s3_store_refuses_keys_with_dotdot(s3, production: S3Store, tmp_path: Path, key: str) -> None:
    """Case `s3-key-dotdot`: every operation refuses the key before touching S3 or the disk."""
    before = _bucket(s3, "production")
    (tmp_path / "src.txt").write_text("x", "utf-8")
    target = tmp_path / "dl" / "deep" / "file"
    operations = {
        "read_bytes": lambda: production.read_bytes(key),
        "write_bytes": lambda: production.write_bytes(key, b"x"),
        "stat": lambda: production.stat(key),
        "upload_file": lambda: production.upload_file(key, tmp_path / "src.txt"),
        "download_file": lambda: production.download_file(key, target),
        "delete": lambda: production.delete(key),
        "copy (source)": lambda: production.copy(key, "lf1/copie.xml"),
        "copy (target)": lambda: production.copy("lf1/xml/document.xml", key),
        "location": lambda: production.location(key),
    }
    with watch.recording() as rec:
        for name, op in operations.items():
            with pytest.raises(UnsafeKeyError, match="unsafe store key") as info:
                op()
            assert repr(key) in str(info.value) or repr(key.lstrip("/")) in str(info.value), name
    assert not rec.connects, "S3 was called"
    assert not (tmp_path / "dl").exists(), "download_file created folders before checking the key"
    assert _bucket(s3, "production") == before


@pytest.mark.parametrize("key", ["../x", "x/../lf1", "a b", "cé22", "x" * 300])
def test_publish_refuses_bad_ouvrage_keys(s3, tmp_path: Path, key: str) -> None:
    """Publishing under a hostile ouvrage key writes nothing (S3 and local stores)."""
    (tmp_path / "document.pdf").write_bytes(b"%PDF-1.7\n")
    local = LocalStore(tmp_path / "generated")
    for store in (S3Store(s3.client, s3.buckets["generated"]), local):
        with pytest.raises(InvalidKeyError, match="invalid ouvrage key"):
            publish(store, key, {"document.pdf": tmp_path / "document.pdf"}, source_version="v", run_id="r")
    assert _bucket(s3, "generated") == {}
    assert not (tmp_path / "generated").exists() or not any((tmp_path / "generated").rglob("*"))


def _put(s3, key: str, body: bytes = b"PWNED\n") -> None:
    s3.client.put_object(Bucket=s3.buckets["production"], Key=key, Body=body)


def test_snapshot_refuses_an_absolute_object_key(s3, production: S3Store, tmp_path: Path) -> None:
    """Case `s3-key-absolute`: `lf1//abs/path` would be written at `/abs/path` (`dest / "/abs"` is `/abs`);
    with `lf1/abs/path` also present, the download succeeded and wrote outside: now refused first."""
    outside = tmp_path / "outside"
    outside.mkdir()
    _put(s3, f"lf1/{outside}/pwned.txt")  # "lf1//tmp/…/outside/pwned.txt"
    _put(s3, f"lf1{outside}/pwned.txt")  # what safe_key() normalises it to, so that the download succeeds
    dest = tmp_path / "snapshot"
    with watch.recording() as rec, pytest.raises(UnsafeKeyError) as info:
        snapshot_ouvrage(production, "lf1", dest)
    assert str(info.value) == (f"s3://{s3.buckets['production']}: unsafe key 'lf1/{outside}/pwned.txt' in the listing: "
                               "not a plain relative path ('..', empty part or leading '/'); remove or rename this "
                               "object")
    assert not (outside / "pwned.txt").exists()
    watch.assert_confined(rec, read=[], write=[dest], network=True)


def test_snapshot_skips_dotdot_object_keys(s3, production: S3Store, tmp_path: Path) -> None:
    """Case `s3-key-dotdot` in a listing: `..` is a hidden name, skipped like `.DS_Store`; nothing lands outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    depth = len(tmp_path.parts) + 2
    _put(s3, "lf1/illustrations/" + "../" * depth + f"{str(outside).lstrip('/')}/dotdot.png")
    _put(s3, "lf1/xml/../../../x.xml")
    dest = tmp_path / "snapshot"
    with watch.recording() as rec:
        snap = snapshot_ouvrage(production, "lf1", dest)
    assert not any(".." in f for f in snap.files)
    assert sorted(snap.files) == ["lf1/idocument.donottouch.xml", "lf1/illustrations/svg/1.A.svg",
                                  "lf1/tableaux/1.2.xml", "lf1/xml/document.xml"]
    assert not list(outside.iterdir()) and not (tmp_path / "x.xml").exists()
    watch.assert_confined(rec, read=[], write=[dest], network=True)


def test_snapshot_skips_s3_folder_markers(s3, production: S3Store, tmp_path: Path) -> None:
    """Case `s3-folder-marker`: the zero-byte `folder/` objects of the S3 console used to become files,
    then the folder's own files failed with NotADirectoryError."""
    _put(s3, "g9/illustrations/", b"")
    _put(s3, "g9/xml/", b"")
    with tempfile.TemporaryDirectory(dir=tmp_path) as dest:
        snap = snapshot_ouvrage(production, "g9", Path(dest))
        assert (Path(dest) / "g9" / "illustrations").is_dir()
        assert (Path(dest) / "g9" / "xml" / "document.xml").is_file()
        assert "g9/xml/document.xml" in snap.files and "g9/illustrations/" not in snap.files
