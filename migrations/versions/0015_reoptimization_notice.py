"""reoptimizationnotice: a re-optimised assignment's notice state in typed columns; assignment.score dropped

The re-optimisation kept what it changed and whether the customer and technician were told in the
``reoptimized`` entry of the ``assignment.score`` JSON (its last use: the decision's record moved to
``assignmentdecision`` in 0009). The entries move into the new table; the column goes.

Revision ID: 0015
Revises: 0009
Create Date: 2026-11-30 10:40:00
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

from models.sqltypes import UTCDateTime

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _when(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) and value else None


def upgrade() -> None:
    notice = op.create_table(
        "reoptimizationnotice",
        sa.Column("assignment_id", sa.Integer(), sa.ForeignKey("assignment.id"), primary_key=True),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.Column("previous_window_start", UTCDateTime(), nullable=True),
        sa.Column("previous_window_end", UTCDateTime(), nullable=True),
        sa.Column("previous_technician_id", sa.Integer(), nullable=True),
    )
    op.create_index("ix_reoptimizationnotice_state", "reoptimizationnotice", ["state"])
    rows = []
    for assignment_id, raw in op.get_bind().execute(sa.text("SELECT id, score FROM assignment")).all():
        score = json.loads(raw) if isinstance(raw, str) else (raw or {})
        mark = score.get("reoptimized") if isinstance(score, dict) else None
        if not isinstance(mark, dict):
            continue
        previous = mark.get("previous_window") or [None, None]
        rows.append({"assignment_id": assignment_id,
                     "state": "queued" if mark.get("notice") == "queued" else "pending",
                     "changed_at": _when(mark.get("at")) or datetime.fromisoformat("2000-01-01T00:00:00+00:00"),
                     "previous_window_start": _when(previous[0]), "previous_window_end": _when(previous[1]),
                     "previous_technician_id": mark.get("previous_technician_id")})
    if rows:
        op.bulk_insert(notice, rows)
    with op.batch_alter_table("assignment") as batch:
        batch.drop_column("score")


def downgrade() -> None:
    with op.batch_alter_table("assignment") as batch:
        batch.add_column(sa.Column("score", sa.JSON(), nullable=False, server_default="{}"))
    op.drop_index("ix_reoptimizationnotice_state", table_name="reoptimizationnotice")
    op.drop_table("reoptimizationnotice")
