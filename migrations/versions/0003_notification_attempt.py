"""notification attempts (outbox delivery log and backoff clock)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 21:25:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import models.sqltypes


revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('notificationattempt',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('notification_id', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('started_at', models.sqltypes.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', models.sqltypes.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ok', sa.Boolean(), nullable=False),
    sa.Column('error', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['notification_id'], ['notification.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('notificationattempt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notificationattempt_notification_id'), ['notification_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('notificationattempt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notificationattempt_notification_id'))

    op.drop_table('notificationattempt')
