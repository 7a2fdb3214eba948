"""assignment.detour_minutes: the parts-depot detour on the leg into a job, kept when the route changes

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21 22:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("assignment") as batch:
        batch.add_column(sa.Column("detour_minutes", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("assignment") as batch:
        batch.drop_column("detour_minutes")
