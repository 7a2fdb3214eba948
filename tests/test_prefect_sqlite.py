"""Prefect's SQLite server begins its write transactions IMMEDIATE when started with scripts/prefect-server.env
(flows/prefect_sqlite.py, loaded through Prefect's plugin entry point): while one of its transactions is open,
another writer must wait for the lock instead of slipping in between a read and a write."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cli.app import prefect_server_settings

PROBE = """
import asyncio, sqlite3, sys
import prefect.server.database.configurations as c

async def main(path):
    config = c.AioSqliteConfiguration(connection_url=f"sqlite+aiosqlite:///{path}")
    engine = await config.engine()
    session = await config.session(engine)
    async with config.begin_transaction(session):
        await session.execute(c.sa.text("select 1"))  # a read first, as creating a flow run does
        other = sqlite3.connect(path, timeout=0)
        try:
            other.execute("BEGIN IMMEDIATE")
            print("other writer got the lock")
            other.execute("ROLLBACK")
        except sqlite3.OperationalError as exc:
            print("other writer waits:", exc)
        other.close()
    await session.close()
    await engine.dispose()

asyncio.run(main(sys.argv[1]))
"""


def server_env() -> dict[str, str]:
    """This process's environment plus scripts/prefect-server.env, as `make serve` and `truckroll demo` set it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_PLUGINS_")}
    return prefect_server_settings() | env


def probe(tmp_path: Path, env: dict[str, str]) -> str:
    db = tmp_path / "prefect.db"
    done = subprocess.run([sys.executable, "-c", PROBE, str(db)], env=env, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_with_the_server_settings_a_transaction_holds_the_write_lock_from_its_start(tmp_path: Path) -> None:
    env = server_env()
    assert env["PREFECT_PLUGINS_ENABLED"] == "true"
    assert probe(tmp_path, env) == "other writer waits: database is locked"


def test_without_the_plugin_prefect_begins_deferred(tmp_path: Path) -> None:
    """The check above can fail: Prefect's own behaviour lets the other writer in (what the plugin mends)."""
    env = server_env() | {"PREFECT_PLUGINS_ENABLED": "false"}
    assert probe(tmp_path, env) == "other writer got the lock"
