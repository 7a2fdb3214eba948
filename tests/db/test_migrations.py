"""Schema changes go through Alembic: the migrations build exactly the models' schema."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from truckroll.db import make_engine, upgrade_db


def schema_differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, SQLModel.metadata))


def head_revision(engine: Engine) -> str:
    with engine.connect() as conn:
        return str(conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one())


def test_migrations_build_the_models_schema_on_sqlite(tmp_path: Path) -> None:
    """`alembic upgrade head` on an empty SQLite file leaves no difference from models/tables.py: a table or
    column added without a migration fails here."""
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade_db(engine)
    assert schema_differences(engine) == []
    engine.dispose()


def test_downgrade_to_base_and_back(tmp_path: Path) -> None:
    """Every migration can be undone: base leaves only alembic_version, head rebuilds every table."""
    from alembic import command

    from truckroll.db import alembic_config

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade_db(engine)
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    upgrade_db(engine)
    assert set(SQLModel.metadata.tables) <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_database_made_before_migrations_is_completed_and_stamped(tmp_path: Path) -> None:
    """A database created with create_all (no migration history) keeps its rows and is stamped at head."""
    from truckroll.db import alembic_config

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    SQLModel.metadata.tables["jobtype"].create(engine)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO jobtype (name, trade, default_duration_minutes, skill_levels_by_complexity, "
                          "required_certifications, typical_parts, typical_value) "
                          "VALUES ('leak repair', 'plumbing', 60, '{}', '[]', '{}', 0)"))
    upgrade_db(engine)
    from alembic.script import ScriptDirectory

    assert head_revision(engine) == ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert schema_differences(engine) == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM jobtype")).scalar_one() == 1
    engine.dispose()


def test_dropped_tables_are_rebuilt(tmp_path: Path) -> None:
    """After `drop_all` (what `truckroll demo --reset` does) the next upgrade rebuilds every table."""
    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade_db(engine)
    SQLModel.metadata.drop_all(engine)
    upgrade_db(engine)
    assert schema_differences(engine) == []
    engine.dispose()


@pytest.mark.postgres
def test_migrations_build_the_models_schema_on_postgres(postgres_url: str) -> None:
    """The same migrations on PostgreSQL 15 leave no difference from the models, and running them twice
    (two processes starting at once take turns on an advisory lock) changes nothing."""
    engine = make_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    upgrade_db(engine)
    upgrade_db(engine)
    assert schema_differences(engine) == []
    engine.dispose()
