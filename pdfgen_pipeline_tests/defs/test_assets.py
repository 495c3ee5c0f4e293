"""The asset chain materialized in process against a real HTTP S3 server (moto)."""

import json

import dagster as dg
import pypdfium2 as pdfium

from pdfgen_pipeline.defs.assets import catalogue, ouvrage_assets
from pdfgen_pipeline.defs.io_managers import ArtifactPointerIOManager
from pdfgen_pipeline.defs.partitions import OUVRAGES
from pdfgen_pipeline.defs.resources import stores_from_env


def _resources():
    stores = stores_from_env()
    return {"stores": stores, "artifact_pointers": ArtifactPointerIOManager(stores=stores)}


def _objects(s3, bucket, prefix=""):
    out = {}
    for page in s3.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"]] = o
    return out


def test_publish_g9_through_s3(s3, tmp_path):
    generated = s3.buckets["generated"]
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(OUVRAGES, ["g9"])
        result = dg.materialize(ouvrage_assets, partition_key="g9", instance=instance, resources=_resources())
        assert result.success
        checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
        assert checks["pdf_readable"].passed and checks["toc_and_index_consistent"].passed
        assert checks["illustrations_present"].passed  # every g9 illustration has its file (one is in commun/)
        mats = {m.asset_key.path[-1]: m for m in result.get_asset_materialization_events()}
        pdf_meta = mats["ouvrage_pdf"].materialization.metadata
        assert pdf_meta["pages"].value > 5
        assert "preview" in mats["ouvrage_vignette"].materialization.metadata
        source_meta = mats["ouvrage_source"].materialization.metadata
        assert any("0.4.A" in k for k in source_meta["commun_files"].value)  # the commun/ file it uses

        published = _objects(s3, generated, "g9/")
        names = {k.split("/", 1)[1] for k in published}
        assert {"document.pdf", "annexe.pdf", "archive.zip", "vignette.jpg", "OUVNAUT_IN_G9.xml", "stderr.log",
                "report.json", "manifest.json"} <= names
        assert not any(".staging" in k for k in published)
        manifest = json.loads(s3.client.get_object(Bucket=generated, Key="g9/manifest.json")["Body"].read())
        assert set(manifest["files"]) == names - {"manifest.json"}
        assert manifest["files"]["document.pdf"]["size"] == published["g9/document.pdf"]["Size"]
        pdf_bytes = s3.client.get_object(Bucket=generated, Key="g9/document.pdf")["Body"].read()
        assert len(pdfium.PdfDocument(pdf_bytes)) == manifest["pages"]
        log = s3.client.get_object(Bucket=generated, Key="g9/stderr.log")["Body"].read().decode()
        assert "Étape 1 sur 5" in log and "Étape 4 sur 5" in log

        # the catalogue lists it
        cat = dg.materialize([catalogue], instance=instance, resources=_resources())
        assert cat.success
        data = json.loads(s3.client.get_object(Bucket=generated, Key="catalogue.json")["Body"].read())
        assert [o["key"] for o in data["ouvrages"]] == ["g9"]
        assert data["ouvrages"][0]["vignette"] == "g9/vignette.jpg"
        html = s3.client.get_object(Bucket=generated, Key="index.html")["Body"].read().decode()
        assert "g9/vignette.jpg" in html and "g9/document.pdf" in html

        # a new version's publication keeps the previous one in history/
        prod = s3.buckets["production"]
        body = s3.client.get_object(Bucket=prod, Key="g9/xml/annexe.xml")["Body"].read()
        s3.client.put_object(Bucket=prod, Key="g9/xml/annexe.xml", Body=body.replace(b"<txt>", b"<txt>Corr. ", 1))
        again = dg.materialize(ouvrage_assets, partition_key="g9", instance=instance, resources=_resources())
        assert again.success
        history = _objects(s3, generated, "g9/history/")
        assert any(k.endswith("/document.pdf") for k in history)
        assert any(k.endswith("/manifest.json") for k in history)


def test_blocking_check_stops_publication(s3, monkeypatch):
    """A PDF without text fails `pdf_readable`: nothing is published."""
    from pdfgen_pipeline.render import verify

    def no_text(path):
        return verify.PdfHealth(pages=3, chars=0, pages_with_text=0, problems=[f"{path.name}: no text"])

    monkeypatch.setattr("pdfgen_pipeline.steps.pdf_health", no_text)
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(OUVRAGES, ["lf1"])
        result = dg.materialize(ouvrage_assets, partition_key="lf1", instance=instance, resources=_resources(),
                                raise_on_error=False)
        assert not result.success
        checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
        assert not checks["pdf_readable"].passed
        assert not _objects(s3, s3.buckets["generated"], "lf1/")


def test_unchanged_source_and_code_are_not_rendered_again(s3):
    """Re-materializing with the same source and code reuses every artifact and republishes nothing."""
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(OUVRAGES, ["lf1"])
        first = dg.materialize(ouvrage_assets, partition_key="lf1", instance=instance, resources=_resources())
        manifest = s3.client.get_object(Bucket=s3.buckets["generated"], Key="lf1/manifest.json")["Body"].read()
        again = dg.materialize(ouvrage_assets, partition_key="lf1", instance=instance, resources=_resources())
        assert first.success and again.success
        meta = {m.asset_key.path[-1]: m.materialization.metadata for m in again.get_asset_materialization_events()}
        assert all(meta[name]["reused"].value for name in ("ouvrage_source", "ouvrage_html", "ouvrage_pdf",
                                                          "ouvrage_publication"))
        assert s3.client.get_object(Bucket=s3.buckets["generated"], Key="lf1/manifest.json")["Body"].read() == manifest
        assert not _objects(s3, s3.buckets["generated"], "lf1/history/")
        # a real change is rendered
        body = s3.client.get_object(Bucket=s3.buckets["production"], Key="lf1/xml/document.xml")["Body"].read()
        s3.client.put_object(Bucket=s3.buckets["production"], Key="lf1/xml/document.xml",
                             Body=body.replace(b"<txt>", b"<txt>Nouveau ", 1))
        third = dg.materialize(ouvrage_assets, partition_key="lf1", instance=instance, resources=_resources())
        meta = {m.asset_key.path[-1]: m.materialization.metadata for m in third.get_asset_materialization_events()}
        assert not meta["ouvrage_pdf"]["reused"].value and not meta["ouvrage_publication"]["reused"].value
        assert _objects(s3, s3.buckets["generated"], "lf1/history/")
