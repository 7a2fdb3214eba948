"""Shared fixtures: a fresh SQLite database per test and Prefect's test harness for flow tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# Tests may run with the default webhook secret (the service refuses to outside a development set-up).
os.environ.setdefault("TRUCKROLL_DEVELOPMENT", "true")

# A throwaway PostgreSQL server: postgres_server, postgres_url, pg_db (tests marked postgres).
pytest_plugins = ("tests.pg",)


@pytest.fixture
def db(tmp_path) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """A fresh SQLite database file that truckroll's settings point at; yields its URL."""
    from truckroll.db import configure

    url = f"sqlite:///{tmp_path / 'truckroll.db'}"
    engine = configure(url)
    yield url
    engine.dispose()


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One temporary Prefect API for the whole session (flow tests run against it)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
