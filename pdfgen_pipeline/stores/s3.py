"""A store in an S3 bucket (or an S3-compatible server), under an optional prefix.

The client comes from dagster-aws' `S3Resource` in the Dagster layer, or from `s3_client()` here;
both honour the standard `AWS_*` environment variables (`AWS_ENDPOINT_URL_S3` for S3-compatible
providers). Listing goes through boto3's paginator; retries are botocore's (adaptive mode).
`PDFGEN_S3_CONNECT_TIMEOUT` / `PDFGEN_S3_READ_TIMEOUT` (seconds) override the client's timeouts.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pdfgen_pipeline.stores.base import ObjectInfo, StoreError, hash_stream, join_key, safe_key

#: botocore retries: adaptive mode backs off on 503 SlowDown, 500, throttling, resets and timeouts.
RETRY_CONFIG = Config(retries={"max_attempts": 8, "mode": "adaptive"}, connect_timeout=10, read_timeout=60)
#: S3 error codes that no retry can mend: the run fails at once (credentials, rights, bucket name).
PERMANENT_CODES = frozenset({"403", "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId",
                             "SignatureDoesNotMatch", "NoSuchBucket", "InvalidBucketName", "AccountProblem"})
#: Uploads up to this size are one PUT, so S3 verifies and keeps a whole-object SHA-256 (multipart objects only
#: get a checksum of their parts' checksums, and are read back to be checked).
SINGLE_PUT_MAX = 1 << 30
UPLOAD_CONFIG = TransferConfig(multipart_threshold=SINGLE_PUT_MAX)
#: `PDFGEN_S3_UPLOAD_CHECKSUM=none` for an S3-compatible server that refuses checksummed uploads: staged files are
#: then read back to be checked.
CHECKSUM_ENV = "PDFGEN_S3_UPLOAD_CHECKSUM"
#: botocore `Config` option → environment variable overriding it (seconds; unset → the defaults above).
TIMEOUT_ENV = {"connect_timeout": "PDFGEN_S3_CONNECT_TIMEOUT", "read_timeout": "PDFGEN_S3_READ_TIMEOUT"}


def timeouts_from_env() -> dict[str, float]:
    """The timeouts set by `PDFGEN_S3_CONNECT_TIMEOUT` / `PDFGEN_S3_READ_TIMEOUT`, as `Config` options."""
    out = {}
    for option, name in TIMEOUT_ENV.items():
        raw = os.environ.get(name, "").strip()
        if not raw:
            continue
        try:
            value = float(raw)
        except ValueError:
            value = 0.0
        if not 0 < value < float("inf"):
            raise ValueError(f"{name} must be a positive number of seconds, not {raw!r}")
        out[option] = value
    return out


def client_config() -> Config:
    """`RETRY_CONFIG` with the timeouts of the environment, if any."""
    timeouts = timeouts_from_env()
    return RETRY_CONFIG.merge(Config(**timeouts)) if timeouts else RETRY_CONFIG


def s3_client(**kwargs: Any):
    """A boto3 S3 client with our retry configuration (endpoint and credentials from the environment)."""
    return boto3.session.Session().client("s3", config=client_config(), **kwargs)


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` → ("bucket", "some/prefix")."""
    if not url.startswith("s3://"):
        raise ValueError(f"not an s3:// URL: {url!r}")
    bucket, _, prefix = url[5:].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {url!r}")
    return bucket, safe_key(prefix).rstrip("/") if prefix else ""


class S3Store:
    """Objects under `s3://bucket/prefix/`; keys are relative to the prefix."""

    def __init__(self, client, bucket: str, prefix: str = ""):
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")

    @classmethod
    def from_url(cls, url: str, client=None) -> S3Store:
        bucket, prefix = parse_s3_url(url)
        return cls(client or s3_client(), bucket, prefix)

    def _full(self, key: str) -> str:
        return join_key(self.prefix, key) if self.prefix else safe_key(key)

    def _rel(self, full: str) -> str:
        return full[len(self.prefix) + 1:] if self.prefix else full

    def _fail(self, action: str, key: str, exc: Exception) -> StoreError:
        client_error = exc if isinstance(exc, ClientError) else exc.__context__  # S3UploadFailedError wraps one
        code = client_error.response.get("Error", {}).get("Code", "?") if isinstance(client_error,
                                                                                     ClientError) else None
        if exc is client_error:
            detail = f"{code}: {exc.response.get('Error', {}).get('Message', '')}".strip()
        else:
            detail = type(exc).__name__ + ": " + str(exc)
        return StoreError(f"S3 {action} s3://{self.bucket}/{self._full(key) if key else self.prefix} failed "
                          f"({detail})", permanent=code in PERMANENT_CODES)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        full = self._full(prefix) if prefix else (self.prefix + "/" if self.prefix else "")
        if prefix.endswith("/") and not full.endswith("/"):
            full += "/"
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full)
            for page in pages:
                for obj in page.get("Contents", []):
                    yield ObjectInfo(self._rel(obj["Key"]), obj["Size"], obj["ETag"].strip('"'),
                                     obj["LastModified"])
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("list", prefix, exc) from exc

    def list_dirs(self, prefix: str = "") -> list[str]:
        full = (self._full(prefix).rstrip("/") + "/") if prefix else (self.prefix + "/" if self.prefix else "")
        names = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full,
                                                                          Delimiter="/")
            for page in pages:
                names.extend(p["Prefix"][len(full):].rstrip("/") for p in page.get("CommonPrefixes", []))
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("list", prefix, exc) from exc
        return sorted(names)

    def stat(self, key: str) -> ObjectInfo | None:
        try:
            r = self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise self._fail("head", key, exc) from exc
        except BotoCoreError as exc:
            raise self._fail("head", key, exc) from exc
        return ObjectInfo(safe_key(key), r["ContentLength"], r["ETag"].strip('"'), r["LastModified"])

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._full(key))["Body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("get", key, exc) from exc

    def write_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        extra = {"ContentType": content_type} if content_type else {}
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._full(key), Body=data, **extra)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("put", key, exc) from exc

    def upload_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        extra = {"ContentType": content_type} if content_type else {}
        if os.environ.get(CHECKSUM_ENV, "SHA256").strip().upper() != "NONE":
            extra["ChecksumAlgorithm"] = "SHA256"
        try:
            self.client.upload_file(str(path), self.bucket, self._full(key), ExtraArgs=extra, Config=UPLOAD_CONFIG)
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("upload", key, exc) from exc
        except Exception as exc:  # boto3's S3UploadFailedError wraps the ClientError
            raise self._fail("upload", key, exc) from exc

    def download_file(self, key: str, path: Path) -> None:
        full = self._full(key)  # checked before anything is created on disk
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.client.download_file(self.bucket, full, str(path))
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("download", key, exc) from exc

    def copy(self, src_key: str, dst_key: str) -> None:
        try:
            self.client.copy_object(Bucket=self.bucket, Key=self._full(dst_key),
                                    CopySource={"Bucket": self.bucket, "Key": self._full(src_key)})
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("copy", src_key, exc) from exc

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._full(key))
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("delete", key, exc) from exc

    def sha256(self, key: str) -> str:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._full(key), ChecksumMode="ENABLED")
            checksum = head.get("ChecksumSHA256") or ""
            if checksum and "-" not in checksum and head.get("ChecksumType", "FULL_OBJECT") == "FULL_OBJECT":
                return base64.b64decode(checksum).hex()
            # no whole-object checksum (multipart upload, provider without checksums): read it back
            h = hashlib.sha256()
            hash_stream(h, self.client.get_object(Bucket=self.bucket, Key=self._full(key))["Body"])
            return h.hexdigest()
        except (ClientError, BotoCoreError) as exc:
            raise self._fail("checksum", key, exc) from exc

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(key)}"
