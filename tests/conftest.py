"""Shared fixtures: a fresh SQLite database per test and Prefect's test harness for flow tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# The test harness's Prefect server runs on SQLite as `make serve` and the demo run theirs: with the plugin that
# begins its write transactions IMMEDIATE (flows/prefect_sqlite.py); without it, concurrent flow runs sleep
# seconds on its 503s.
os.environ.setdefault("PREFECT_PLUGINS_ENABLED", "true")
os.environ.setdefault("PREFECT_PLUGINS_ALLOW", "truckroll-sqlite")
# The factories' calendar is in 2030 (tests/factories.py): plan that far ahead. The horizon itself is tested
# with an explicit one (tests/service/test_operations.py).
os.environ.setdefault("TRUCKROLL_PLANNING_HORIZON_DAYS", "36500")
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
def prefect_database_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Prefect SQLite database migrated once for the session (``prefect server database upgrade``, about 20 s):
    a Prefect server started on a copy skips its migrations."""
    import subprocess
    import sys

    home = tmp_path_factory.mktemp("prefect-template")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    prefect = Path(sys.executable).parent / "prefect"
    subprocess.run([str(prefect), "server", "database", "upgrade", "-y"], env=env, check=True, capture_output=True,
                   timeout=600)
    return home / "prefect.db"


def _copy_prefect_database(template: Path, home: Path, name: str = "prefect.db") -> Path:
    import shutil

    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, home / name)
    return home


@pytest.fixture
def prefect_home(tmp_path: Path, prefect_database_template: Path) -> Path:
    """``tmp_path / "prefect"``, a PREFECT_HOME whose SQLite database is a copy of the migrated template (a
    served stack rooted at ``tmp_path`` uses it)."""
    return _copy_prefect_database(prefect_database_template, tmp_path / "prefect")


@pytest.fixture(scope="session")
def prefect_harness(prefect_database_template: Path) -> Iterator[None]:
    """One temporary Prefect API for the whole session (flow tests run against it), on a copy of the migrated
    database (Prefect's harness puts its database in a fresh ``mkdtemp()``; this hands it one that holds it)."""
    import tempfile
    from unittest import mock

    import prefect.testing.utilities as harness
    from prefect.testing.utilities import prefect_test_harness

    home = _copy_prefect_database(prefect_database_template, Path(tempfile.mkdtemp()), "prefect-test.db")
    with mock.patch.object(harness, "mkdtemp", lambda: str(home)), prefect_test_harness(server_startup_timeout=120):
        yield


# ------------------------------------------------------------------ no process outlives the test session
# Every process the tests start inherits this marker, however it is started (subprocesses, process groups,
# Prefect's temporary API server, uvicorn, PostgreSQL, workers). At the end of the session any survivor fails the
# run (and is killed, so that the next run starts clean).
_SESSION_MARKER = "TRUCKROLL_TEST_SESSION"
os.environ[_SESSION_MARKER] = f"{os.getpid()}-{os.urandom(4).hex()}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import signal
    import time

    from truckroll.stack import processes_with_env

    marker = os.environ[_SESSION_MARKER]
    deadline = time.monotonic() + 15  # let servers stopped by the last fixtures finish exiting
    left = processes_with_env(_SESSION_MARKER, marker)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = processes_with_env(_SESSION_MARKER, marker)
    if left:
        lines = "\n".join(f"  {pid}: {cmd[:200]}" for pid, cmd in left)
        print(f"\nFAILED: {len(left)} process(es) started by the tests are still running (now killed):\n{lines}")
        for pid, _ in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
