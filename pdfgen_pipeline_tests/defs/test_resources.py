"""The stores resource: one S3 client per configuration and process."""

import dagster as dg

from pdfgen_pipeline.defs.resources import stores_from_env


def _stores():
    with dg.build_resources({"stores": stores_from_env()}) as resources:
        return resources.stores


def test_stores_share_one_client_until_the_s3_settings_change(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9")
    monkeypatch.setenv("PDFGEN_ARTIFACTS_URL", "s3://bucket-a")
    monkeypatch.setenv("PDFGEN_GENERATED_URL", "s3://bucket-b")
    stores = _stores()
    a, b = stores.artifacts(), stores.generated()
    assert a.client is b.client
    assert _stores().artifacts().client is a.client
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:10")
    other = _stores().artifacts().client
    assert other is not a.client
    assert other.meta.endpoint_url == "http://127.0.0.1:10"
