"""Whether the suite runs in CI, where a missing tool is an error, never a skip."""

from __future__ import annotations

import os


def in_ci() -> bool:
    """True when the `CI` environment variable is set (to anything but an explicit false)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
