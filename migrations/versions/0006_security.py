"""security: users, credentials (hashed API keys and tokens), the audit log, seen webhook signatures, and the
fingerprint of the body stored with an idempotency key

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 04:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from models.sqltypes import UTCDateTime

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_str = sqlmodel.sql.sqltypes.AutoString


def upgrade() -> None:
    op.create_table(
        "appuser",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", _str(length=100), nullable=False),
        sa.Column("role", _str(), nullable=False),
        sa.Column("technician_id", sa.Integer(), nullable=True),
        sa.Column("password_hash", _str(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["technician_id"], ["technician.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_appuser_name"), "appuser", ["name"], unique=True)
    op.create_table(
        "credential",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", _str(), nullable=False),
        sa.Column("secret_hash", _str(), nullable=False),
        sa.Column("prefix", _str(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("revoked_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["appuser.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_credential_user_id"), "credential", ["user_id"], unique=False)
    op.create_index(op.f("ix_credential_secret_hash"), "credential", ["secret_hash"], unique=True)
    op.create_table(
        "auditentry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("actor", _str(), nullable=False),
        sa.Column("actor_role", _str(), nullable=False),
        sa.Column("action", _str(), nullable=False),
        sa.Column("target", _str(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_auditentry_at"), "auditentry", ["at"], unique=False)
    op.create_index(op.f("ix_auditentry_action"), "auditentry", ["action"], unique=False)
    op.create_table(
        "webhookdelivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("signature_hash", _str(), nullable=False),
        sa.Column("signed_at", UTCDateTime(), nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_webhookdelivery_signature_hash"), "webhookdelivery", ["signature_hash"], unique=True)
    op.create_index(op.f("ix_webhookdelivery_signed_at"), "webhookdelivery", ["signed_at"], unique=False)
    with op.batch_alter_table("servicerequest") as batch:
        batch.add_column(sa.Column("idempotency_fingerprint", _str(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("servicerequest") as batch:
        batch.drop_column("idempotency_fingerprint")
    op.drop_index(op.f("ix_webhookdelivery_signed_at"), table_name="webhookdelivery")
    op.drop_index(op.f("ix_webhookdelivery_signature_hash"), table_name="webhookdelivery")
    op.drop_table("webhookdelivery")
    op.drop_index(op.f("ix_auditentry_action"), table_name="auditentry")
    op.drop_index(op.f("ix_auditentry_at"), table_name="auditentry")
    op.drop_table("auditentry")
    op.drop_index(op.f("ix_credential_secret_hash"), table_name="credential")
    op.drop_index(op.f("ix_credential_user_id"), table_name="credential")
    op.drop_table("credential")
    op.drop_index(op.f("ix_appuser_name"), table_name="appuser")
    op.drop_table("appuser")
