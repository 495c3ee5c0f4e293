"""Local and S3 stores behave alike; keys cannot escape; publication keeps the previous generation."""

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from pdfgen_pipeline.referentiel import group_listing, scan_referentiel, snapshot_ouvrage
from pdfgen_pipeline.stores.base import StoreError, UnsafeKeyError, safe_key, sha256_file
from pdfgen_pipeline.stores.local import LocalStore
from pdfgen_pipeline.stores.publication import HISTORY_KEEP, publish, read_manifest, recover_interrupted
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


@pytest.mark.parametrize("checksum", ["SHA256", "none"])
def test_sha256_is_the_stored_content(store, tmp_path, monkeypatch, checksum):
    monkeypatch.setenv("PDFGEN_S3_UPLOAD_CHECKSUM", checksum)  # none: an S3-compatible server without checksums
    src = tmp_path / "doc.pdf"
    src.write_bytes(b"%PDF-1.7 " * 5000)
    store.upload_file("k/doc.pdf", src, "application/pdf")  # S3: the server's whole-object checksum
    store.write_bytes("k/plain.bin", b"no checksum asked")  # S3: read back and hashed
    assert store.sha256("k/doc.pdf") == sha256_file(src)
    assert store.sha256("k/plain.bin") == hashlib.sha256(b"no checksum asked").hexdigest()
    with pytest.raises(StoreError, match=r"missing\.pdf"):
        store.sha256("k/missing.pdf")


class CorruptingStore(LocalStore):
    """A store whose uploads of `document.pdf` arrive damaged (same size, one byte changed)."""

    def upload_file(self, key, path, content_type=None):
        super().upload_file(key, path, content_type)
        if key.endswith("document.pdf"):
            target = self._path(key)
            data = bytearray(target.read_bytes())
            data[len(data) // 2] ^= 0xFF
            target.write_bytes(bytes(data))


def test_a_damaged_upload_is_never_published(tmp_path):
    store = CorruptingStore(tmp_path / "store")
    good = LocalStore(tmp_path / "store")
    files = {"document.pdf": tmp_path / "document.pdf", "vignette.jpg": tmp_path / "vignette.jpg"}
    files["vignette.jpg"].write_bytes(b"jpeg 1")
    files["document.pdf"].write_bytes(b"%PDF generation 1")
    publish(good, "c99", files, source_version="v1", run_id="run1")
    files["document.pdf"].write_bytes(b"%PDF generation 2")
    files["vignette.jpg"].write_bytes(b"jpeg 2")
    with pytest.raises(StoreError, match=r"c99/\.staging/run2/document\.pdf.*sha256"):
        publish(store, "c99", files, source_version="v2", run_id="run2")
    assert read_manifest(store, "c99")["source_version"] == "v1"
    assert store.read_bytes("c99/document.pdf") == b"%PDF generation 1"
    assert store.read_bytes("c99/vignette.jpg") == b"jpeg 1"


def test_files_of_an_older_generation_are_removed(store, tmp_path):
    names = ("document.pdf", "annexe.pdf", "archive.zip")
    files = {n: tmp_path / n for n in names}
    for path in files.values():
        path.write_bytes(path.name.encode())
    publish(store, "g9", files, source_version="v1", run_id="run1")
    del files["annexe.pdf"], files["archive.zip"]
    publish(store, "g9", files, source_version="v2", run_id="run2")
    top = sorted(o.key for o in store.list("g9/") if o.key.count("/") == 1)
    assert top == ["g9/document.pdf", "g9/manifest.json"]
    assert {o.key.rsplit("/", 1)[1] for o in store.list("g9/history/")} == {*names, "manifest.json"}

    # a publication killed after its manifest, before that clean-up: the next one finishes it
    store.write_bytes("g9/archive.zip", b"left by a dead publication")
    assert recover_interrupted(store, "g9") == ["removed archive.zip, not in the manifest"]
    assert store.stat("g9/archive.zip") is None and store.stat("g9/document.pdf") is not None
