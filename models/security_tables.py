"""Who may call the service, with what, and what they changed (docs/security.md).

Only hashes of secrets are stored: passwords as argon2 hashes, API keys and bearer tokens (random, 256 bits)
as SHA-256 digests, which are looked up by index.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from models.sqltypes import UTCDateTime
from models.tables import utcnow


class Role(StrEnum):
    ADMIN = "admin"
    DISPATCHER = "dispatcher"
    TECHNICIAN = "technician"
    INTEGRATION = "integration"


class CredentialKind(StrEnum):
    API_KEY = "api_key"
    TOKEN = "token"


class User(SQLModel, table=True):
    __tablename__ = "appuser"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=100)
    role: str
    # A technician user sees only this technician's day and jobs.
    technician_id: int | None = Field(default=None, foreign_key="technician.id")
    password_hash: str | None = None
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))


class Credential(SQLModel, table=True):
    """An API key (no expiry) or a bearer token (expires); ``secret_hash`` is the SHA-256 of the secret."""

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="appuser.id", index=True)
    kind: str
    secret_hash: str = Field(index=True, unique=True)
    # The first characters of the secret, to tell keys apart in `truckroll users list`.
    prefix: str
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    revoked_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))


class AuditEntry(SQLModel, table=True):
    """Who changed what, when: rules loaded, escalations resolved, rules overridden, users changed."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False, index=True))
    actor: str
    actor_role: str = ""
    action: str = Field(index=True)
    target: str = ""
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class WebhookDelivery(SQLModel, table=True):
    """A webhook signature already accepted: the same one again is a replay (refused across instances)."""

    id: int | None = Field(default=None, primary_key=True)
    signature_hash: str = Field(index=True, unique=True)
    signed_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False, index=True))
    received_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
