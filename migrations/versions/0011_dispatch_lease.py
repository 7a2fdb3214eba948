"""dispatchlease: a dispatch run's lease on its request (heartbeat), attempts and last error

Revision ID: 0011
Revises: 0006
Create Date: 2026-11-30 04:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from models.sqltypes import UTCDateTime

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dispatchlease",
        sa.Column("request_id", sa.Integer(), sa.ForeignKey("servicerequest.id"), primary_key=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("holder", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_dispatchlease_lease_expires_at", "dispatchlease", ["lease_expires_at"])


def downgrade() -> None:
    op.drop_index("ix_dispatchlease_lease_expires_at", table_name="dispatchlease")
    op.drop_table("dispatchlease")
