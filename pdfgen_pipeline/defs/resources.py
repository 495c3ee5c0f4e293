"""Configuration: where the pipeline reads and writes, from the environment with embedded defaults.

Each location is `s3://bucket[/prefix]` or a local path (relative paths are relative to the
repository). S3 goes through dagster-aws' `S3Resource`; credentials and endpoint come from the
standard `AWS_*` variables, passed as `EnvVar` (never as plain values, never logged);
`PDFGEN_S3_CONNECT_TIMEOUT` / `PDFGEN_S3_READ_TIMEOUT` set the client's timeouts (botocore's 60 s otherwise).
"""


import json
import os
import threading
from pathlib import Path

import boto3
import dagster as dg
from botocore.config import Config
from botocore.handlers import disable_signing
from dagster_aws.s3 import S3Resource
from dagster_aws.utils import construct_boto_client_retry_config

from pdfgen_pipeline.stores.base import Store
from pdfgen_pipeline.stores.factory import open_store
from pdfgen_pipeline.stores.s3 import TIMEOUT_ENV, timeouts_from_env

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = {
    "PDFGEN_REFERENTIEL_URL": "examples/referentiel",
    "PDFGEN_PREPARATION_URL": "examples/referentiel",
    "PDFGEN_GENERATED_URL": "var/generated",
    "PDFGEN_ARTIFACTS_URL": "var/artifacts",
}
S3_MAX_ATTEMPTS = 8  # botocore "standard" retries: 503 SlowDown, 500, throttling, resets, timeouts
_CLIENTS: dict[str, object] = {}
_CLIENTS_LOCK = threading.Lock()


def shared_client(s3: S3Resource):
    """One boto3 client per S3 configuration and process: building one costs 0.15 to 0.4 s, and a run
    asks for one in every step and IO manager call. boto3 clients are thread-safe."""
    # the settings (values, or the names of the variables holding them) and the variables themselves
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_") or k in TIMEOUT_ENV.values()}
    key = json.dumps([s3.model_dump(), env], sort_keys=True, default=str)
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = _client(s3)
        return _CLIENTS[key]


def _client(s3: S3Resource):
    """`s3.get_client()`; when PDFGEN_S3_CONNECT_TIMEOUT / PDFGEN_S3_READ_TIMEOUT are set, the same client
    (same settings, dagster-aws' retry configuration) with those timeouts: S3Resource has no timeout setting."""
    timeouts = timeouts_from_env()
    if not timeouts:
        return s3.get_client()
    session = boto3.session.Session(profile_name=s3.profile_name)
    client = session.client(
        "s3", region_name=s3.region_name, use_ssl=s3.use_ssl, verify=s3.verify, endpoint_url=s3.endpoint_url,
        aws_access_key_id=s3.aws_access_key_id, aws_secret_access_key=s3.aws_secret_access_key,
        aws_session_token=s3.aws_session_token,
        config=construct_boto_client_retry_config(s3.max_attempts).merge(Config(**timeouts)))
    if s3.use_unsigned_session:
        client.meta.events.register("choose-signer.s3.*", disable_signing)
    return client


def _env_or_none(name: str) -> dg.EnvVar | None:
    """`EnvVar(name)` when the variable is set, else None (boto3's own defaults then apply)."""
    return dg.EnvVar(name) if os.environ.get(name) else None


def s3_resource() -> S3Resource:
    """dagster-aws' S3 resource, honouring AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL (S3-compatible servers)."""
    endpoint = "AWS_ENDPOINT_URL_S3" if os.environ.get("AWS_ENDPOINT_URL_S3") else "AWS_ENDPOINT_URL"
    return S3Resource(
        region_name=_env_or_none("AWS_REGION") or _env_or_none("AWS_DEFAULT_REGION"),
        endpoint_url=_env_or_none(endpoint),
        aws_access_key_id=_env_or_none("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=_env_or_none("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=_env_or_none("AWS_SESSION_TOKEN"),
        max_attempts=S3_MAX_ATTEMPTS,
    )


class StoresResource(dg.ConfigurableResource):
    """The four locations: production and preparation referentiels, generated store, artifact store."""

    referentiel_url: str
    preparation_url: str
    generated_url: str
    artifacts_url: str
    s3: S3Resource

    def open(self, url: str) -> Store:
        """A store for `url` (S3 through the S3 resource's client)."""
        client = shared_client(self.s3) if url.startswith("s3://") else None
        return open_store(url, s3_client=client, base_dir=REPO)

    def referentiel(self) -> Store:
        return self.open(self.referentiel_url)

    def preparation(self) -> Store:
        return self.open(self.preparation_url)

    def generated(self) -> Store:
        return self.open(self.generated_url)

    def artifacts(self) -> Store:
        return self.open(self.artifacts_url)

    def named(self, referentiel: str) -> Store:
        """`production`, `preparation`, or any store URL / path (e.g. an uploaded folder)."""
        if referentiel == "production":
            return self.referentiel()
        if referentiel == "preparation":
            return self.preparation()
        return self.open(referentiel)


def stores_from_env() -> StoresResource:
    """The resource as configured by `PDFGEN_*_URL` (embedded defaults when unset)."""
    urls = {name: os.environ.get(name) or default for name, default in DEFAULTS.items()}
    return StoresResource(
        referentiel_url=urls["PDFGEN_REFERENTIEL_URL"],
        preparation_url=urls["PDFGEN_PREPARATION_URL"],
        generated_url=urls["PDFGEN_GENERATED_URL"],
        artifacts_url=urls["PDFGEN_ARTIFACTS_URL"],
        s3=s3_resource(),
    )
