"""Users, their credentials and the audit log (docs/security.md). No FastAPI here: service/auth.py and
`truckroll users` both call these functions.

Passwords are hashed with argon2 (argon2-cffi, the reference implementation's bindings): slow on purpose,
because people choose guessable passwords. API keys and bearer tokens are 256 random bits, which no one can
guess, so their SHA-256 digest is stored: it can be looked up by index on every request without the cost of
argon2 per call (the practice of GitHub's and Stripe's keys).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import update
from sqlmodel import Session, col, select

from models import Technician
from models.security_tables import AuditEntry, Credential, CredentialKind, Role, User

ROLES = tuple(r.value for r in Role)
KEY_PREFIX = {CredentialKind.API_KEY: "trk_key_", CredentialKind.TOKEN: "trk_tok_"}
_hasher = PasswordHasher()
# Verified when the user is unknown, so an unknown name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a password")


class AuthError(ValueError):
    """A user or credential operation that cannot be done; the message says why."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user behind the credential."""

    user_id: int
    name: str
    role: str
    technician_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def may_see_technician(self, technician_id: int) -> bool:
        """Admins and dispatchers see every technician; a technician only themselves."""
        if self.role == Role.TECHNICIAN:
            return self.technician_id == technician_id
        return self.role in (Role.ADMIN, Role.DISPATCHER)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _principal(user: User) -> Principal:
    assert user.id is not None
    return Principal(user.id, user.name, user.role, user.technician_id)


def create_user(name: str, role: str, *, session: Session, technician_id: int | None = None,
                password: str | None = None) -> User:
    """A new active user. Raises AuthError naming what is wrong (unknown role, name taken, ...)."""
    name = name.strip()
    if not name or len(name) > 100 or "\x00" in name:
        raise AuthError("name must be 1..100 characters")
    if role not in ROLES:
        raise AuthError(f"role must be one of {', '.join(ROLES)} (got {role!r})")
    if role == Role.TECHNICIAN:
        if technician_id is None:
            raise AuthError("a technician user needs --technician-id (the technician they are)")
        if session.get(Technician, technician_id) is None:
            raise AuthError(f"no technician {technician_id}")
    elif technician_id is not None:
        raise AuthError("only a technician user is linked to a technician id")
    if password is not None and len(password) < 8:
        raise AuthError("password must be at least 8 characters")
    if session.exec(select(User).where(User.name == name)).first() is not None:
        raise AuthError(f"user {name!r} exists")
    user = User(name=name, role=role, technician_id=technician_id,
                password_hash=_hasher.hash(password) if password else None)
    session.add(user)
    session.flush()
    return user


def get_user(name: str, *, session: Session) -> User:
    user = session.exec(select(User).where(User.name == name)).first()
    if user is None:
        raise AuthError(f"no user {name!r}")
    return user


def issue(user: User, kind: CredentialKind, *, session: Session, ttl: timedelta | None = None,
          now: datetime | None = None) -> tuple[str, Credential]:
    """A new secret for ``user`` (shown once; only its digest is stored) and its row."""
    if not user.active:
        raise AuthError(f"user {user.name!r} is revoked")
    assert user.id is not None
    secret = KEY_PREFIX[kind] + secrets.token_urlsafe(32)
    now = now or datetime.now(UTC)
    cred = Credential(user_id=user.id, kind=kind, secret_hash=digest(secret), prefix=secret[:12], created_at=now,
                      expires_at=now + ttl if ttl is not None else None)
    session.add(cred)
    session.flush()
    return secret, cred


def password_login(name: str, password: str, *, session: Session, ttl: timedelta) -> tuple[str, Credential]:
    """A bearer token for a name and password (the OAuth2 password flow); AuthError when they do not match."""
    user = session.exec(select(User).where(User.name == name, col(User.active).is_(True))).first()
    stored = user.password_hash if user is not None and user.password_hash else _DUMMY_HASH
    ok: bool
    try:
        ok = _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None or not user.password_hash:
        raise AuthError("wrong user name or password")
    return issue(user, CredentialKind.TOKEN, session=session, ttl=ttl)


def authenticate(secret: str, *, session: Session, now: datetime | None = None) -> Principal | None:
    """The user behind an API key or bearer token, or None (unknown, revoked, expired, user revoked)."""
    if not secret or len(secret) > 200:
        return None
    now = now or datetime.now(UTC)
    row = session.exec(select(Credential, User).join(User, col(User.id) == Credential.user_id)
                       .where(Credential.secret_hash == digest(secret))).first()
    if row is None:
        return None
    cred, user = row
    if cred.revoked_at is not None or not user.active or (cred.expires_at is not None and cred.expires_at <= now):
        return None
    return _principal(user)


def revoke_user(name: str, *, session: Session, now: datetime | None = None) -> int:
    """Deactivate the user and revoke every credential they hold; returns how many were revoked."""
    user = get_user(name, session=session)
    user.active = False
    session.add(user)
    result = session.execute(update(Credential).where(col(Credential.user_id) == user.id,
                                                      col(Credential.revoked_at).is_(None))
                             .values(revoked_at=now or datetime.now(UTC)))
    return int(getattr(result, "rowcount", 0) or 0)


def revoke_credential(prefix: str, *, session: Session, now: datetime | None = None) -> Credential:
    """Revoke the one credential whose secret starts with ``prefix`` (as `truckroll users list` shows it)."""
    rows = session.exec(select(Credential).where(Credential.prefix == prefix[:12],
                                                 col(Credential.revoked_at).is_(None))).all()
    if len(rows) != 1:
        raise AuthError(f"no active credential {prefix!r}" if not rows else f"{prefix!r} is ambiguous")
    rows[0].revoked_at = now or datetime.now(UTC)
    session.add(rows[0])
    return rows[0]


def list_users(*, session: Session, now: datetime | None = None) -> list[dict[str, Any]]:
    """Every user with their active credentials (prefix, kind, expiry); no secret, no hash."""
    now = now or datetime.now(UTC)
    out = []
    for user in session.exec(select(User).order_by(col(User.name))).all():
        creds = session.exec(select(Credential).where(Credential.user_id == user.id,
                                                      col(Credential.revoked_at).is_(None))).all()
        out.append({"name": user.name, "role": user.role, "technician_id": user.technician_id,
                    "active": user.active, "password": bool(user.password_hash),
                    "credentials": [{"prefix": c.prefix, "kind": c.kind,
                                     "expires_at": c.expires_at.isoformat() if c.expires_at else None}
                                    for c in creds if c.expires_at is None or c.expires_at > now]})
    return out


def audit(session: Session, *, actor: str, actor_role: str = "", action: str, target: str = "",
          details: dict[str, Any] | None = None) -> AuditEntry:
    """Record who did what, in the caller's transaction (so the record and the change commit together)."""
    entry = AuditEntry(actor=actor, actor_role=actor_role, action=action, target=target, details=details or {})
    session.add(entry)
    session.flush()
    return entry


def audit_entries(*, session: Session, action: str | None = None, limit: int = 200) -> list[AuditEntry]:
    q = select(AuditEntry)
    if action:
        q = q.where(AuditEntry.action == action)
    return list(session.exec(q.order_by(col(AuditEntry.id).desc()).limit(limit)).all())
