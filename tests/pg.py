"""A throwaway PostgreSQL server for the session (``postgres_server``) and a fresh database per test
(``postgres_url``).

The server binaries refuse to run as root, so as root they run as the ``postgres`` user in a directory it owns.
Tests marked ``postgres`` are skipped only where no PostgreSQL server binaries exist.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

_CANDIDATE_BIN_DIRS = [Path(os.environ["TRUCKROLL_PG_BIN"])] if os.environ.get("TRUCKROLL_PG_BIN") else []
_CANDIDATE_BIN_DIRS += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def pg_bin_dir() -> Path | None:
    """The newest directory holding initdb and pg_ctl, or None."""
    for d in _CANDIDATE_BIN_DIRS:
        if (d / "initdb").exists() and (d / "pg_ctl").exists():
            return d
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    _names: itertools.count  # type: ignore[type-arg]

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, prefix: str = "truckroll") -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = f"{prefix}_{next(self._names)}"
        with psycopg.connect(f"host={self.host} port={self.port} user={self.user} dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """initdb + pg_ctl start on 127.0.0.1 and a free port; stopped and removed at the end of the session."""
    bindir = pg_bin_dir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    root = Path(tempfile.mkdtemp(prefix="truckroll-pg-"))
    data, sock = root / "data", root / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sock, "postgres")
        root.chmod(0o755)
    env = dict(os.environ, LC_ALL="C.UTF-8", LANG="C.UTF-8")
    user = "postgres" if os.geteuid() == 0 else os.environ.get("USER", "postgres")
    subprocess.run(_as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", user, "--auth=trust",
                                    "-E", "UTF8", "--no-sync"]), check=True, env=env, capture_output=True)
    port = free_port()
    opts = (f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
            f"-c full_page_writes=off -c max_connections=200")
    start = subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l",
                                            str(root / "server.log"), "-w", "-t", "60", "start"]),
                           env=env, capture_output=True, text=True)
    if start.returncode != 0:
        log = (root / "server.log").read_text() if (root / "server.log").exists() else ""
        raise RuntimeError(f"PostgreSQL did not start: {start.stderr}\n{log}")
    try:
        yield PostgresServer("127.0.0.1", port, user, itertools.count(1))
    finally:
        subprocess.run(_as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       env=env, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """An empty database of its own on the session's server."""
    return postgres_server.create_database()


@pytest.fixture
def pg_db(postgres_url: str) -> Iterator[str]:
    """Like ``db``, on PostgreSQL: truckroll's settings point at a fresh, migrated database."""
    from truckroll.db import configure, get_engine

    engine = configure(postgres_url)
    yield postgres_url
    engine.dispose()
    get_engine.cache_clear()
