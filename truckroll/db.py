"""Database engine and sessions. SQLite (WAL mode) by default, PostgreSQL through TRUCKROLL_DATABASE_URL."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, SQLModel, create_engine

import models  # noqa: F401  (registers the tables on SQLModel.metadata)
from truckroll.settings import get_settings

log = logging.getLogger(__name__)

def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and enforced foreign keys."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@lru_cache
def get_engine(url: str | None = None) -> Engine:
    return make_engine(url or get_settings().database_url)


MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
# Held while migrating PostgreSQL, so two processes starting at once do not both create the tables.
_MIGRATION_LOCK_ID = 7720417


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for truckroll's migrations, optionally bound to an open connection."""
    cfg = Config(str(MIGRATIONS_DIR.parent / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["configure_logger"] = False
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade_db(engine: Engine | None = None, revision: str = "head") -> Engine:
    """Apply the migrations up to ``revision``.

    Two cases from before migrations existed are repaired: tables made by ``create_all`` (no version yet) are
    completed and stamped at head; a version left behind after the tables were dropped is discarded.
    """
    engine = engine or get_engine()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK_ID})
        tables = set(inspect(conn).get_table_names())
        ours = set(SQLModel.metadata.tables) & tables
        cfg = alembic_config(conn)
        if "alembic_version" in tables and not ours:
            conn.execute(text("DROP TABLE alembic_version"))
        elif "alembic_version" not in tables and ours:
            log.warning("database without migration history: creating missing tables and stamping it at head")
            SQLModel.metadata.create_all(conn)
            command.stamp(cfg, "head")
            return engine
        command.upgrade(cfg, revision)
    return engine


def init_db(engine: Engine | None = None) -> Engine:
    """Bring the schema up to date: the migrations on a database file or server, ``create_all`` in memory."""
    engine = engine or get_engine()
    if engine.url.database in (None, "", ":memory:"):
        SQLModel.metadata.create_all(engine)
    else:
        upgrade_db(engine)
    return engine


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on any error: one transaction."""
    with Session(engine or get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def configure(url: str) -> Engine:
    """Point truckroll at another database (tests, the demo) and create its tables."""
    import os

    from truckroll.settings import get_settings as _gs

    os.environ["TRUCKROLL_DATABASE_URL"] = url
    _gs.cache_clear()
    get_engine.cache_clear()
    return init_db(get_engine(url))
