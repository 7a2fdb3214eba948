"""Prefect's server on SQLite: its write transactions begin IMMEDIATE, so a busy database is waited for, not failed.

Prefect 3.8's server opens a write transaction as ``BEGIN DEFERRED`` unless the caller asks for a row lock.
Creating a flow run reads the flow's labels and then inserts the run. When another writer (the task-run recorder,
the event persister, another run's state change) commits between that read and the insert, SQLite cannot upgrade
the stale read transaction: it answers "database is locked" at once, without waiting its busy timeout
(SQLITE_BUSY_SNAPSHOT). The API turns it into a 503 and the client sleeps 2 s, then 4 s, ... before trying again
(the known Prefect issue PrefectHQ/prefect#18934). In the demo one flow run in six waited so. With ``BEGIN
IMMEDIATE`` a writer takes SQLite's write lock when it begins and waits its turn (Prefect's busy timeout, 60 s).

How it is loaded: through Prefect's plugin entry point (``[project.entry-points."prefect.plugins"]`` in
pyproject.toml), which Prefect imports in every process when ``PREFECT_PLUGINS_ENABLED`` is true
(scripts/prefect-server.env sets it for ``make serve`` and ``truckroll demo``). Importing this module only adds an
import hook: Prefect's server database module is changed when a process imports it (a Prefect server, the
temporary one ``truckroll demo`` starts included), so a client that never imports it pays nothing. PostgreSQL
(Prefect at scale) uses another configuration class and is not touched. Prefect is pinned (pyproject.toml);
``tests/test_prefect_sqlite.py`` fails if the patched method changes shape.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import AsyncGenerator, Sequence
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

TARGET = "prefect.server.database.configurations"
# Prefect reads this from a plugin: the plugin API versions this module works with.
PREFECT_PLUGIN_API_REQUIRES = ">=0.1,<1"


def immediate_writes(module: ModuleType) -> None:
    """Make ``AioSqliteConfiguration.begin_transaction`` of Prefect's server begin every transaction IMMEDIATE."""
    config = module.AioSqliteConfiguration
    if getattr(config.begin_transaction, "truckroll_immediate", False):
        return
    mode = module.SQLITE_BEGIN_MODE

    @asynccontextmanager
    async def begin_transaction(self: Any, session: Any, with_for_update: bool = False) -> AsyncGenerator[Any, None]:
        token = mode.set("IMMEDIATE")
        try:
            async with session.begin() as transaction:
                yield transaction
        finally:
            mode.reset(token)

    begin_transaction.truckroll_immediate = True  # type: ignore[attr-defined]
    config.begin_transaction = begin_transaction


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        self.inner.exec_module(module)
        immediate_writes(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds nothing itself: wraps the loader of Prefect's server database module when it is imported."""

    def find_spec(self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
                  ) -> importlib.machinery.ModuleSpec | None:
        if fullname != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _Loader(spec.loader)
        return spec


def install() -> None:
    """Patch Prefect's server database module now if it is already imported, else when it is."""
    if TARGET in sys.modules:
        immediate_writes(sys.modules[TARGET])
    elif not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


install()
