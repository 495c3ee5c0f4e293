"""Local and S3 stores behave alike; keys cannot escape; publication keeps the previous generation."""

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from pdfgen_pipeline.referentiel import group_listing, scan_referentiel, snapshot_ouvrage
from pdfgen_pipeline.stores.base import StoreError, UnsafeKeyError, safe_key
from pdfgen_pipeline.stores.local import LocalStore
from pdfgen_pipeline.stores.publication import HISTORY_KEEP, publish, read_manifest
from pdfgen_pipeline.stores.s3 import S3Store, s3_client


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path):
    if request.param == "local":
        return LocalStore(tmp_path / "store")
    s3 = request.getfixturevalue("s3")
    return S3Store(s3_client(), s3.buckets["artifacts"], "some/prefix")


@pytest.mark.parametrize("key", ["../x", "a/../../b", "/etc/passwd", "a\\b", "a\x00b", "x/\n", ".."])
def test_unsafe_keys_are_refused(key):
    with pytest.raises(UnsafeKeyError):
        safe_key(key)


def test_round_trip_list_stat_copy_delete(store, tmp_path):
    store.write_bytes("a/b/one.txt", b"1")
    src = tmp_path / "two.bin"
    src.write_bytes(b"22")
    store.upload_file("a/two.bin", src)
    store.copy("a/two.bin", "c/two-copy.bin")
    assert [o.key for o in store.list("a/")] == ["a/b/one.txt", "a/two.bin"]
    assert store.list_dirs("") == ["a", "c"]
    assert store.stat("a/two.bin").size == 2 and store.stat("missing") is None
    assert store.read_bytes("c/two-copy.bin") == b"22"
    store.download_file("a/b/one.txt", tmp_path / "dl" / "one.txt")
    assert (tmp_path / "dl" / "one.txt").read_bytes() == b"1"
    store.delete("a/b/one.txt")
    assert [o.key for o in store.list("a/")] == ["a/two.bin"]
    with pytest.raises(StoreError, match=r"one\.txt"):
        store.read_bytes("a/b/one.txt")
    with pytest.raises(UnsafeKeyError):
        store.read_bytes("../outside")


def test_s3_listing_is_paginated(s3):
    client = s3_client()
    bucket = s3.buckets["artifacts"]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: client.put_object(Bucket=bucket, Key=f"many/{i:05d}", Body=b""), range(1105)))
    keys = [o.key for o in S3Store(client, bucket).list("many/")]
    assert len(keys) == 1105 and keys == sorted(keys)


def test_s3_errors_name_the_bucket_and_key(s3):
    store = S3Store(s3_client(), "no-such-bucket-xyz")
    with pytest.raises(StoreError, match=r"s3://no-such-bucket-xyz/k\.txt"):
        store.read_bytes("k.txt")


def test_scan_and_snapshot_from_s3(s3, tmp_path):
    store = S3Store(s3_client(), s3.buckets["production"])
    scan = scan_referentiel(store)
    assert list(scan.ouvrages) == ["c99", "g9", "lf1"]
    snap = snapshot_ouvrage(store, "c99", tmp_path / "snap")
    assert (snap.ouvrage_dir / "xml" / "document.xml").is_file()
    assert snap.commun_files == ["commun/illustrations/eps/0.3.A.eps"]  # only what c99 uses
    assert not any(".DS_Store" in f for f in snap.files)
    again = snapshot_ouvrage(store, "c99", tmp_path / "snap2")
    assert again.content_hash == snap.content_hash and again.source_version == scan.ouvrages["c99"].version


def test_group_listing_skips_shared_folders_and_unsafe_names():
    from pdfgen_pipeline.stores.base import ObjectInfo

    now = datetime.now(UTC)
    keys = ["ok/xml/document.xml", "commun/xml/document.xml", "source/xml/document.xml", ".hidden/xml/document.xml",
            "noxml/illustrations/a.png", "bad key/xml/document.xml", "ok/.DS_Store", "top.txt"]
    scan = group_listing(ObjectInfo(k, 1, "e", now) for k in keys)
    assert list(scan.ouvrages) == ["ok"]
    assert [o.key for o in scan.ouvrages["ok"].objects] == ["ok/xml/document.xml"]
    assert scan.ignored == ["bad key", "noxml"]


def test_publication_keeps_history_and_writes_manifest_last(store, tmp_path):
    files = {}
    for name in ("document.pdf", "vignette.jpg"):
        files[name] = tmp_path / name
    for generation in range(HISTORY_KEEP + 2):
        for name, path in files.items():
            path.write_bytes(f"{name} generation {generation}".encode())
        published = publish(store, "c99", files, source_version=f"v{generation}", run_id=f"run{generation}",
                            now=datetime(2026, 1, 1, 0, 0, generation, tzinfo=UTC))
        assert published.manifest["source_version"] == f"v{generation}"
    manifest = read_manifest(store, "c99")
    assert manifest["run_id"] == f"run{HISTORY_KEEP + 1}"
    assert store.read_bytes("c99/document.pdf") == f"document.pdf generation {HISTORY_KEEP + 1}".encode()
    assert len(store.list_dirs("c99/history")) == HISTORY_KEEP
    oldest = store.list_dirs("c99/history")[0]
    kept = json.loads(store.read_bytes(f"c99/history/{oldest}/manifest.json"))
    assert kept["source_version"] == "v1"  # v0 pruned, v1..v5 kept, v6 published
    assert not [o.key for o in store.list("c99/.staging/")]
