"""deploy/init_s3.py (the `s3-init` service of the compose stack) against moto's S3 server over HTTP."""

from __future__ import annotations

import importlib.util
import uuid
from types import ModuleType

import boto3
import pytest

from pdfgen_pipeline.referentiel import list_ouvrages
from pdfgen_pipeline.stores.s3 import S3Store
from pdfgen_pipeline_tests.conftest import REFERENTIEL, S3_ENV
from pdfgen_pipeline_tests.deploy.common import REPO


def load_init_s3() -> ModuleType:
    spec = importlib.util.spec_from_file_location("init_s3", REPO / "deploy" / "init_s3.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def stack_env(moto_server) -> dict[str, str]:
    """The variables of the compose stack, pointed at fresh bucket names on the test S3 server."""
    suffix = uuid.uuid4().hex[:8]
    return {**S3_ENV, "AWS_ENDPOINT_URL_S3": moto_server,
            "PDFGEN_REFERENTIEL_URL": f"s3://referentiel-{suffix}",
            "PDFGEN_PREPARATION_URL": f"s3://shared-{suffix}/preparation",
            "PDFGEN_GENERATED_URL": f"s3://shared-{suffix}/generated",
            "PDFGEN_ARTIFACTS_URL": f"s3://artifacts-{suffix}"}


def client(env: dict[str, str]):
    return boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"], region_name=env["AWS_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def test_creates_buckets_and_seeds_the_referentiels(stack_env, monkeypatch, capsys):
    for key, value in stack_env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    init_s3 = load_init_s3()
    assert init_s3.main(["--seed", str(REFERENTIEL), "--timeout", "10"]) == 0
    s3 = client(stack_env)
    buckets = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    suffix = stack_env["PDFGEN_ARTIFACTS_URL"].rsplit("-", 1)[1]
    assert {f"referentiel-{suffix}", f"shared-{suffix}", f"artifacts-{suffix}"} <= buckets
    files = sorted(p.relative_to(REFERENTIEL).as_posix() for p in REFERENTIEL.rglob("*") if p.is_file())
    for name in ("PDFGEN_REFERENTIEL_URL", "PDFGEN_PREPARATION_URL"):
        store = S3Store.from_url(stack_env[name], s3)
        assert sorted(o.key for o in store.list()) == files
        assert set(list_ouvrages(REFERENTIEL)) <= set(store.list_dirs())
    assert not list(S3Store.from_url(stack_env["PDFGEN_GENERATED_URL"], s3).list())  # only referentiels seeded
    region = s3.get_bucket_location(Bucket=f"artifacts-{suffix}")["LocationConstraint"]
    assert region == stack_env["AWS_REGION"]

    # again (the service runs on every `up`): nothing created, nothing uploaded
    store = S3Store.from_url(stack_env["PDFGEN_REFERENTIEL_URL"], s3)
    before = {o.key: o.last_modified for o in store.list()}
    capsys.readouterr()
    assert init_s3.main(["--seed", str(REFERENTIEL), "--timeout", "10"]) == 0
    out = capsys.readouterr().out
    assert "created" not in out and out.count("not empty") == 2
    assert {o.key: o.last_modified for o in store.list()} == before


def test_local_stores_need_nothing(monkeypatch, capsys):
    for name in ("PDFGEN_REFERENTIEL_URL", "PDFGEN_PREPARATION_URL", "PDFGEN_GENERATED_URL", "PDFGEN_ARTIFACTS_URL"):
        monkeypatch.setenv(name, "var/somewhere")
    assert load_init_s3().main([]) == 0
    assert "nothing to do" in capsys.readouterr().out
