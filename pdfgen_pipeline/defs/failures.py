"""Failures that no retry can mend fail the step at once, bypassing its `RetryPolicy`: bad input
(malformed XML, unsafe key, missing document), a render limit hit, a permanent S3 error."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from pdfgen_pipeline.ouvrage.keys import InvalidKeyError
from pdfgen_pipeline.ouvrage.loader import OuvrageError
from pdfgen_pipeline.render.limits import RenderLimitError
from pdfgen_pipeline.stores.base import StoreError, UnsafeKeyError
from pdfgen_pipeline.xmlsafe import XmlInputError

#: Errors that come out the same on every attempt.
NOT_RETRIED = (OuvrageError, XmlInputError, InvalidKeyError, UnsafeKeyError, RenderLimitError)


@contextmanager
def fail_fast_on_permanent_errors() -> Iterator[None]:
    """Turn bad input, a render limit or a permanent `StoreError` (access denied, missing bucket) into a
    `dg.Failure` that the step's `RetryPolicy` does not retry; transient errors propagate and are retried."""
    try:
        yield
    except (StoreError, *NOT_RETRIED) as exc:
        if isinstance(exc, StoreError) and not exc.permanent:
            raise
        raise dg.Failure(description=f"{type(exc).__name__}: {exc}", allow_retries=False,
                         metadata={"error": str(exc), "retried": False}) from exc
