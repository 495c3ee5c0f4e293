"""The production sensor and the nightly schedule against a real HTTP S3 server (moto)."""

import json
import time
from datetime import UTC, datetime

import dagster as dg
import pytest

from pdfgen_pipeline.defs.partitions import OUVRAGES
from pdfgen_pipeline.defs.resources import stores_from_env
from pdfgen_pipeline.defs.schedules import nightly_reconciliation
from pdfgen_pipeline.defs.sensors import referentiel_production_sensor

SAMPLES = ["c99", "g9", "lf1"]


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        yield inst


def tick(instance, cursor=None):
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"stores": stores_from_env()}) as ctx:
        result = referentiel_production_sensor(ctx)
    for req in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
    return result


def requested(result) -> list[str]:
    return sorted(r.partition_key for r in result.run_requests or [])


def test_sensor_registers_requests_then_follows_changes(s3, instance):
    production = s3.buckets["production"]
    first = tick(instance)
    assert requested(first) == SAMPLES
    assert sorted(instance.get_dynamic_partitions(OUVRAGES)) == SAMPLES
    run_keys = {r.partition_key: r.run_key for r in first.run_requests}
    assert all(run_keys[k].startswith(f"{k}:") for k in SAMPLES)

    second = tick(instance, first.cursor)
    assert requested(second) == [] and not second.dynamic_partitions_requests

    # one changed object → exactly that ouvrage, with a new run key
    body = s3.client.get_object(Bucket=production, Key="lf1/xml/document.xml")["Body"].read()
    s3.client.put_object(Bucket=production, Key="lf1/xml/document.xml", Body=body.replace(b"Feux", b"Feux ", 1))
    third = tick(instance, second.cursor)
    assert requested(third) == ["lf1"]
    assert third.run_requests[0].run_key != run_keys["lf1"]

    # an illustration changed: the ouvrage's version changes too
    s3.client.put_object(Bucket=production, Key="c99/illustrations/png/new.png", Body=b"\x89PNG")
    assert requested(tick(instance, third.cursor)) == ["c99"]


def test_sensor_ignores_commun_source_and_deleted_ouvrages_keep_their_files(s3, instance):
    production, generated = s3.buckets["production"], s3.buckets["generated"]
    first = tick(instance)
    s3.client.put_object(Bucket=generated, Key="g9/document.pdf", Body=b"%PDF-1.7 published")
    s3.client.put_object(Bucket=production, Key="commun/illustrations/eps/x.eps", Body=b"%!PS")
    s3.client.put_object(Bucket=production, Key="source/xsl/other.xsl", Body=b"<x/>")
    s3.client.put_object(Bucket=production, Key="Fichiers_communs/y.txt", Body=b"y")
    after_shared = tick(instance, first.cursor)
    assert requested(after_shared) == []
    for obj in s3.client.list_objects_v2(Bucket=production, Prefix="g9/")["Contents"]:
        s3.client.delete_object(Bucket=production, Key=obj["Key"])
    after_delete = tick(instance, after_shared.cursor)
    assert requested(after_delete) == []
    assert "g9" not in json.loads(after_delete.cursor)
    assert s3.client.get_object(Bucket=generated, Key="g9/document.pdf")["Body"].read() == b"%PDF-1.7 published"
    assert "g9" in instance.get_dynamic_partitions(OUVRAGES)  # the partition and its history stay


def test_sensor_without_cursor_compares_with_published_manifests(s3, instance):
    first = tick(instance)
    versions = json.loads(first.cursor)
    manifest = {"ouvrage": "c99", "files": {}, "source_version": versions["c99"]}
    s3.client.put_object(Bucket=s3.buckets["generated"], Key="c99/manifest.json", Body=json.dumps(manifest).encode())
    lost = tick(instance, cursor=None)
    assert requested(lost) == ["g9", "lf1"]
    corrupt = tick(instance, cursor="{not json")
    assert requested(corrupt) == ["g9", "lf1"]


def _put(s3, bucket, key, body=b"x"):
    s3.client.put_object(Bucket=bucket, Key=key, Body=body)


def test_nightly_schedule_requests_exactly_the_stale_ouvrages(s3, instance):
    production, generated = s3.buckets["production"], s3.buckets["generated"]
    # an ouvrage folder without xml/document.xml: never generated
    _put(s3, production, "zz/illustrations/a.png", b"\x89PNG")
    time.sleep(1.1)  # S3 LastModified has one-second resolution
    _put(s3, generated, "c99/document.pdf", b"%PDF c99 newer than its XML")
    _put(s3, generated, "g9/document.pdf", b"%PDF g9 will be older")
    time.sleep(1.1)
    body = s3.client.get_object(Bucket=production, Key="g9/xml/document.xml")["Body"].read()
    _put(s3, production, "g9/xml/document.xml", body)  # XML newer than the PDF
    # lf1 has no PDF yet
    with dg.build_schedule_context(instance=instance, resources={"stores": stores_from_env()},
                                   scheduled_execution_time=datetime(2026, 12, 4, 0, 5, tzinfo=UTC)) as ctx:
        result = nightly_reconciliation(ctx)
    assert sorted(r.partition_key for r in result) == ["g9", "lf1"]
    # every ouvrage missing from the partitions is registered, fresh ones too; a folder without XML is not
    assert sorted(instance.get_dynamic_partitions(OUVRAGES)) == ["c99", "g9", "lf1"]
    assert all(r.run_key.startswith("nightly:2026-12-04:") for r in result)


def test_nightly_schedule_skips_when_everything_is_fresh(s3, instance):
    time.sleep(1.1)
    for key in SAMPLES:
        _put(s3, s3.buckets["generated"], f"{key}/document.pdf", b"%PDF fresh")
    with dg.build_schedule_context(instance=instance, resources={"stores": stores_from_env()}) as ctx:
        result = nightly_reconciliation(ctx)
    assert isinstance(result, dg.SkipReason)
    assert sorted(instance.get_dynamic_partitions(OUVRAGES)) == sorted(SAMPLES)


def test_schedule_definition_matches_the_former_task():
    assert nightly_reconciliation.cron_schedule == "5 0 * * *"
    assert nightly_reconciliation.execution_timezone == "Europe/Paris"


def test_sensor_and_schedule_for_one_version_publish_once(s3, instance):
    """The sensor and the nightly schedule both ask for lf1 at the same source version: both runs succeed,
    the second publishes nothing (same manifest, no history), and both carry the same version."""
    from pdfgen_pipeline.defs.assets import ouvrage_assets
    from pdfgen_pipeline.defs.io_managers import ArtifactPointerIOManager

    stores = stores_from_env()
    resources = {"stores": stores, "artifact_pointers": ArtifactPointerIOManager(stores=stores)}
    by_sensor = next(r for r in tick(instance).run_requests if r.partition_key == "lf1")
    with dg.build_schedule_context(instance=instance, resources={"stores": stores},
                                   scheduled_execution_time=datetime(2026, 12, 4, 0, 5, tzinfo=UTC)) as ctx:
        by_schedule = next(r for r in nightly_reconciliation(ctx) if r.partition_key == "lf1")
    assert by_sensor.tags["pdfgen/source_version"] == by_schedule.tags["pdfgen/source_version"]
    generated = s3.buckets["generated"]
    manifests = []
    for request in (by_sensor, by_schedule):
        result = dg.materialize(ouvrage_assets, partition_key="lf1", instance=instance, resources=resources,
                                tags=request.tags)
        assert result.success
        manifests.append(s3.client.get_object(Bucket=generated, Key="lf1/manifest.json")["Body"].read())
        publication = next(m for m in result.get_asset_materialization_events()
                           if m.asset_key.path[-1] == "ouvrage_publication")
        reused = publication.materialization.metadata["reused"].value
        assert reused == (request is by_schedule), request.run_key
    assert manifests[0] == manifests[1]
    assert json.loads(manifests[0])["source_version"] == by_sensor.tags["pdfgen/source_version"]
    assert not s3.client.list_objects_v2(Bucket=generated, Prefix="lf1/history/").get("Contents")
