"""Ouvrage keys are untrusted input: they become folder names and S3 prefixes."""

from __future__ import annotations

import re

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class InvalidKeyError(ValueError):
    """An ouvrage key that cannot be used as a folder name or S3 prefix."""


def validate_ouvrage_key(key: str) -> str:
    """Return `key` if it is a safe ouvrage key (ASCII letters, digits, `.`, `_`, `-`; ≤ 64 chars; no `..`)."""
    if not isinstance(key, str) or not _KEY.fullmatch(key) or ".." in key:
        shown = key[:80] + ("…" if len(key) > 80 else "") if isinstance(key, str) else repr(key)
        raise InvalidKeyError(
            f"invalid ouvrage key {shown!r}: use 1 to 64 ASCII letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, without '..'")
    return key
