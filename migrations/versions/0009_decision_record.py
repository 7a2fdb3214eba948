"""decision records in typed columns (assignment_decision), a relocation's own home base and radius centre

Revision ID: 0009
Revises: 0010
Create Date: 2026-11-30 04:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.sqltypes import UTCDateTime

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("technicianmembership") as batch:
        batch.add_column(sa.Column("home_lat", sa.Float(), nullable=True))
        batch.add_column(sa.Column("home_lon", sa.Float(), nullable=True))
        batch.add_column(sa.Column("radius_centre_lat", sa.Float(), nullable=True))
        batch.add_column(sa.Column("radius_centre_lon", sa.Float(), nullable=True))
    op.create_table(
        "assignmentdecision",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("assignment_id", sa.Integer(), sa.ForeignKey("assignment.id"), nullable=False),
        sa.Column("request_id", sa.Integer(), sa.ForeignKey("servicerequest.id"), nullable=False),
        sa.Column("score_total", sa.Float(), nullable=True),
        sa.Column("travel", sa.Float(), nullable=True),
        sa.Column("skill", sa.Float(), nullable=True),
        sa.Column("workload", sa.Float(), nullable=True),
        sa.Column("preference", sa.Float(), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("added_travel_minutes", sa.Float(), nullable=True),
        sa.Column("utilisation_before", sa.Float(), nullable=True),
        sa.Column("utilisation_after", sa.Float(), nullable=True),
        sa.Column("expected_value", sa.Float(), nullable=True),
        sa.Column("candidates", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("eligible", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("boundary", sa.String(), nullable=True),
        sa.Column("relaxation", sa.String(), nullable=True),
        sa.Column("displaced_request_ids", sa.String(), nullable=False, server_default=""),
        sa.Column("moved_request_ids", sa.String(), nullable=False, server_default=""),
        sa.Column("overrides", sa.String(), nullable=False, server_default=""),
        sa.Column("override_reason", sa.String(), nullable=True),
        sa.Column("decided_by", sa.String(), nullable=False, server_default="dispatch"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_assignmentdecision_assignment_id", "assignmentdecision", ["assignment_id"], unique=True)
    op.create_index("ix_assignmentdecision_request_id", "assignmentdecision", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_assignmentdecision_request_id", table_name="assignmentdecision")
    op.drop_index("ix_assignmentdecision_assignment_id", table_name="assignmentdecision")
    op.drop_table("assignmentdecision")
    with op.batch_alter_table("technicianmembership") as batch:
        batch.drop_column("radius_centre_lon")
        batch.drop_column("radius_centre_lat")
        batch.drop_column("home_lon")
        batch.drop_column("home_lat")
