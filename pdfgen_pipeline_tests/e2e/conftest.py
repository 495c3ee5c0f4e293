"""End-to-end fixtures: a temporary PostgreSQL server (the production instance's storage)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pdfgen_pipeline_tests.e2e.deployment import deployment  # noqa: F401 - the fixture, shared by the e2e tests
from pdfgen_pipeline_tests.postgres import PostgresServer, postgres_or_skip


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL server for the session (database, user and password in its settings).
    Skipped when PostgreSQL is not installed, except in CI (`CI` set), where that is a failure."""
    with postgres_or_skip() as server:
        yield server
