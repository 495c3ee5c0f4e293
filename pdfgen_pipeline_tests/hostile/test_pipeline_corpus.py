"""Hostile input reaching the pipeline through S3: nothing published on error, the previous publication
intact; on a warning the new book is published and the warning is in the asset metadata.

Each case first publishes a good version of its ouvrage (a copy of the sample lf1 under the case's
key) through the real asset chain on moto S3, then replaces the ouvrage's source in the production
bucket with the hostile one and materializes again.

Two things differ from production, for time only: the assets' retry policy (3 retries, 2 s
exponential backoff: ~22 s per failing run) retries without waiting, and the image conversion
timeout is `IMAGE_TIMEOUT_S` instead of 60 s.
"""

from __future__ import annotations

import functools
import json
import re
import tempfile
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pypdfium2 as pdfium
import pytest
from dagster._core.definitions.policy import RetryPolicy

from pdfgen_pipeline.defs.assets import ouvrage_assets
from pdfgen_pipeline.defs.io_managers import ArtifactPointerIOManager
from pdfgen_pipeline.defs.partitions import OUVRAGES
from pdfgen_pipeline.defs.resources import stores_from_env
from pdfgen_pipeline.render import book, images
from pdfgen_pipeline_tests.conftest import REFERENTIEL
from pdfgen_pipeline_tests.hostile import watch
from pdfgen_pipeline_tests.hostile.corpus import CASES, IMAGE_TIMEOUT_S, SENTINEL, Bench, Case, Raises, Warns
from pdfgen_pipeline_tests.hostile.test_render_corpus import SECRETS

BY_ID = {c.id: c for c in CASES}
E2E_CASES = ["malformed-xml", "xxe-file", "billion-laughs", "missing-document", "empty-ouvrage",
             "eps-infinite-loop", "svg-script", "svg-ssrf"]


@pytest.fixture
def pipeline(s3, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A Dagster instance and the resources on the moto buckets; temp files in `tmp_path/tmp`."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    monkeypatch.setattr(RetryPolicy, "calculate_delay", lambda self, attempt_num: 0)
    monkeypatch.setattr(book, "prepare_images", functools.partial(images.prepare_images, timeout_s=IMAGE_TIMEOUT_S))
    with dg.instance_for_test() as instance:
        stores = stores_from_env()
        resources = {"stores": stores, "artifact_pointers": ArtifactPointerIOManager(stores=stores)}

        def materialize(key: str) -> dg.ExecuteInProcessResult:
            if key not in instance.get_dynamic_partitions(OUVRAGES):
                instance.add_dynamic_partitions(OUVRAGES, [key])
            return dg.materialize(ouvrage_assets, partition_key=key, instance=instance, resources=resources,
                                  raise_on_error=False)

        yield SimpleNamespace(s3=s3, materialize=materialize, tmp=tmp_path / "tmp")


def objects(s3, bucket: str, prefix: str = "") -> dict[str, str]:
    """Key → ETag of every object under `prefix`."""
    out = {}
    for page in s3.client.get_paginator("list_objects_v2").paginate(Bucket=s3.buckets[bucket], Prefix=prefix):
        out.update({o["Key"]: o["ETag"] for o in page.get("Contents", [])})
    return out


def published(s3) -> tuple[dict[str, str], dict[str, bytes]]:
    """The whole generated bucket: keys and ETags, and the bytes of every manifest.json."""
    listing = objects(s3, "generated")
    bucket = s3.buckets["generated"]
    manifests = {k: s3.client.get_object(Bucket=bucket, Key=k)["Body"].read()
                 for k in listing if k.endswith("/manifest.json")}
    return listing, manifests


def replace_source(s3, key: str, folder: Path | None) -> None:
    """Delete ouvrage `key` from the production bucket and upload `folder` (regular files only) in its place."""
    bucket = s3.buckets["production"]
    for k in objects(s3, "production", f"{key}/"):
        s3.client.delete_object(Bucket=bucket, Key=k)
    if folder is None:
        return
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        s3.client.upload_file(str(path), bucket, f"{key}/{path.relative_to(folder).as_posix()}")


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """Every step failure's message and the messages of its causes (a retried step wraps the error)."""
    parts = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            while error is not None:
                parts.append(error.message.strip())
                error = error.cause
    return "\n".join(parts)


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {m.asset_key.path[-1]: m.materialization.metadata for m in result.get_asset_materialization_events()}


def publish_good_version(pipeline, key: str) -> tuple[dict[str, str], dict[str, bytes]]:
    replace_source(pipeline.s3, key, REFERENTIEL / "lf1")
    first = pipeline.materialize(key)
    assert first.success, failure_text(first)
    return published(pipeline.s3)


@pytest.mark.parametrize("case_id", E2E_CASES)
def test_hostile_source_through_the_pipeline(pipeline, tmp_path: Path, case_id: str) -> None:
    case: Case = BY_ID[case_id]
    s3 = pipeline.s3
    key = f"h-{case.id}"
    before, manifests = publish_good_version(pipeline, key)
    assert f"{key}/manifest.json" in manifests

    bench = Bench(tmp_path / "case")
    try:
        case.build(bench)
        replace_source(s3, key, bench.ouvrage)
        with watch.recording() as rec:
            result = pipeline.materialize(key)
        after, new_manifests = published(s3)

        if isinstance(case.outcome, Raises):
            assert not result.success
            text = failure_text(result)
            assert re.search(case.outcome.message, text), text
            if case.outcome.file is not None and case.outcome.line is not None:
                line = r"\d+" if case.outcome.line == 0 else str(case.outcome.line)
                assert re.search(rf"/{key}/{case.outcome.file}:{line}:", text), text
            elif case.outcome.file is not None:
                assert f"{key}/{case.outcome.file}" in text, text
            assert after == before, "the publication changed"
            assert new_manifests == manifests
        else:
            assert isinstance(case.outcome, Warns)
            assert result.success, failure_text(result)
            assert new_manifests[f"{key}/manifest.json"] != manifests[f"{key}/manifest.json"]
            assert any(k.startswith(f"{key}/history/") for k in after), "the previous version was not kept"
            html_meta = _metadata(result)["ouvrage_html"]
            md = html_meta["warnings"].value
            for w in case.outcome.warnings:
                assert f"`{w.code}`" in md, md
            report = json.loads(s3.client.get_object(Bucket=s3.buckets["generated"],
                                                     Key=f"{key}/report.json")["Body"].read())
            for w in case.outcome.warnings:
                assert any(x["code"] == w.code and re.search(w.message, x["message"]) for x in report["warnings"]), w
            pdf = s3.client.get_object(Bucket=s3.buckets["generated"], Key=f"{key}/document.pdf")["Body"].read()
            document = pdfium.PdfDocument(pdf)
            assert len(document) >= 1
            assert SENTINEL in " ".join(p.get_textpage().get_text_range() for p in document).replace("\r\n", " ")
            document.close()

        # nothing outside this test's folders was read or written, no secret reached the bucket
        home_aws = Path("~/.aws").expanduser()
        watch.assert_confined(rec, read=[home_aws], write=[tmp_path], network=True)
        moto = repr(("127.0.0.1", int(s3.endpoint.rsplit(":", 1)[1])))
        assert set(rec.connects) <= {moto}, rec.connects  # S3 only
        for k in objects(s3, "generated", f"{key}/"):
            body = s3.client.get_object(Bucket=s3.buckets["generated"], Key=k)["Body"].read()
            assert not [s for s in SECRETS if s in body], k
        assert not watch.processes_in(tmp_path)
        if case.check is not None:
            out = tmp_path / "published"
            for k in objects(s3, "generated", f"{key}/"):
                if "/history/" not in k:
                    target = out / k.split("/", 1)[1]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    s3.client.download_file(s3.buckets["generated"], k, str(target))
            case.check(bench, out)
    finally:
        bench.close()


def test_hostile_ouvrage_keys_through_the_pipeline(pipeline) -> None:
    """Bad partition keys fail in the first step: nothing published, nothing stored, lf1 intact."""
    s3 = pipeline.s3
    before, manifests = publish_good_version(pipeline, "lf1")
    artifacts = objects(s3, "artifacts")
    for key in ("../lf1", "lf1/../lf1", "a b", "cé22", "x" * 300):
        result = pipeline.materialize(key)
        assert not result.success
        text = failure_text(result)
        assert "invalid ouvrage key" in text and "ASCII" in text, text
        assert published(s3) == (before, manifests)
        assert objects(s3, "artifacts") == artifacts


def test_absolute_object_key_through_the_pipeline(pipeline, tmp_path: Path) -> None:
    """`lf1//abs/path` + `lf1/abs/path` in the referentiel: refused, nothing written there, lf1 intact."""
    s3 = pipeline.s3
    before, manifests = publish_good_version(pipeline, "lf1")
    outside = tmp_path / "outside"
    outside.mkdir()
    bucket = s3.buckets["production"]
    s3.client.put_object(Bucket=bucket, Key=f"lf1/{outside}/pwned.txt", Body=b"PWNED\n")
    s3.client.put_object(Bucket=bucket, Key=f"lf1{outside}/pwned.txt", Body=b"PWNED\n")
    result = pipeline.materialize("lf1")
    assert not result.success
    assert f"unsafe key 'lf1/{outside}/pwned.txt' in the listing" in failure_text(result)
    assert not (outside / "pwned.txt").exists()
    assert published(s3) == (before, manifests)
