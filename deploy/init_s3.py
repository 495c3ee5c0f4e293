"""One-shot S3 set-up of the container stack: create the buckets named by the `PDFGEN_*_URL` variables and,
with `--seed DIR`, fill the referentiels that are still empty with DIR (the image's sample referentiel).

Run by the `s3-init` service of deploy/compose.yaml (`pdfgen-entrypoint init-s3`). Endpoint and credentials
come from the standard `AWS_*` variables, as for the pipeline itself. Safe to run again: existing buckets
and non-empty referentiels are left alone.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from pdfgen_pipeline.stores.s3 import S3Store, parse_s3_url, s3_client

URL_VARS = ("PDFGEN_REFERENTIEL_URL", "PDFGEN_PREPARATION_URL", "PDFGEN_GENERATED_URL", "PDFGEN_ARTIFACTS_URL")
SEEDED_VARS = ("PDFGEN_REFERENTIEL_URL", "PDFGEN_PREPARATION_URL")


def s3_urls(env: Mapping[str, str]) -> dict[str, str]:
    """The `PDFGEN_*_URL` variables that point at S3 (local paths need no set-up)."""
    return {name: env[name] for name in URL_VARS if env.get(name, "").startswith("s3://")}


def region(env: Mapping[str, str]) -> str | None:
    """The region the buckets are created in (as resources.py: AWS_REGION, then AWS_DEFAULT_REGION)."""
    return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None


def wait_for_endpoint(client, timeout: float) -> None:
    """Retry until the S3 endpoint answers (the server container may still be starting)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.list_buckets()
            return
        except (BotoCoreError, ClientError) as exc:
            if time.monotonic() >= deadline:
                raise SystemExit(f"init-s3: S3 endpoint not reachable after {timeout:.0f} s: {exc}") from exc
            time.sleep(1)


def ensure_bucket(client, bucket: str, region_name: str | None) -> bool:
    """Create `bucket` unless it exists; True when created."""
    try:
        client.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise
    extra = {}
    if region_name and region_name != "us-east-1":
        extra["CreateBucketConfiguration"] = {"LocationConstraint": region_name}
    client.create_bucket(Bucket=bucket, **extra)
    return True


def seed(store: S3Store, root: Path) -> int:
    """Upload every file under `root` into `store` if it holds nothing yet; the number of files uploaded."""
    if next(iter(store.list()), None) is not None:
        return 0
    files = sorted(p for p in root.rglob("*") if p.is_file())
    for path in files:
        store.upload_file(path.relative_to(root).as_posix(), path)
    return len(files)


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Create the buckets, seed the empty referentiels; print what was done."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=Path, help="referentiel folder copied into empty referentiels")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the S3 endpoint")
    args = parser.parse_args(argv)
    env = os.environ if env is None else env

    urls = s3_urls(env)
    if not urls:
        print("init-s3: no PDFGEN_*_URL points at s3://, nothing to do")
        return 0
    client = s3_client(region_name=region(env))
    wait_for_endpoint(client, args.timeout)
    for bucket in sorted({parse_s3_url(url)[0] for url in urls.values()}):
        created = ensure_bucket(client, bucket, region(env))
        print(f"init-s3: bucket {bucket} {'created' if created else 'exists'}")
    if args.seed:
        for name in SEEDED_VARS:
            if name in urls:
                n = seed(S3Store.from_url(urls[name], client), args.seed)
                print(f"init-s3: {urls[name]}: " + (f"seeded with {n} files from {args.seed}" if n else "not empty"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
