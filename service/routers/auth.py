"""Signing in (the OAuth2 password flow: a bearer token for a name and password), who am I, and the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from models.security_tables import CredentialKind
from service.auth import AUTH_RESPONSES, Principal, current_principal, require_roles
from service.deps import SessionDep
from service.errors import ErrorOut
from truckroll import auth
from truckroll.settings import get_settings

router = APIRouter(tags=["auth"])


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    expires_at: datetime


class PrincipalOut(BaseModel):
    user_id: int
    name: str
    role: str
    technician_id: int | None = None


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    actor_role: str
    action: str
    target: str
    details: dict[str, object]


@router.post("/auth/token", response_model=TokenOut, summary="Sign in: a bearer token for a name and password",
             responses={400: {"model": ErrorOut, "description": "Wrong user name or password"},
                        422: {"model": ErrorOut, "description": "Missing form fields"}})
def issue_token(form: Annotated[OAuth2PasswordRequestForm, Depends()], session: SessionDep) -> TokenOut:
    """The OAuth2 password flow (form fields ``username`` and ``password``): send the token as
    ``Authorization: Bearer <token>`` until it expires (``TRUCKROLL_TOKEN_TTL_MINUTES``)."""
    if len(form.username) > 100 or len(form.password) > 1000:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "wrong user name or password")
    ttl = timedelta(minutes=get_settings().token_ttl_minutes)
    try:
        token, cred = auth.password_login(form.username, form.password, session=session, ttl=ttl)
    except auth.AuthError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, str(exc)) from None
    assert cred.expires_at is not None and cred.kind == CredentialKind.TOKEN
    return TokenOut(access_token=token, expires_in=int(ttl.total_seconds()), expires_at=cred.expires_at)


@router.get("/auth/me", response_model=PrincipalOut, summary="Who the credential belongs to",
            responses=AUTH_RESPONSES)
def whoami(who: Annotated[Principal, Depends(current_principal)]) -> PrincipalOut:
    return PrincipalOut(user_id=who.user_id, name=who.name, role=who.role, technician_id=who.technician_id)


@router.get("/audit", response_model=list[AuditOut], summary="The audit log, newest first (admins)",
            responses=AUTH_RESPONSES, dependencies=[Depends(require_roles())])
def audit_log(session: SessionDep,
              action: Annotated[str | None, Query(max_length=100, description="Only this action, e.g. "
                                                                               "rules.loaded")] = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[AuditOut]:
    """Who changed rules, resolved an escalation (overriding the utilisation target) or changed users, and when."""
    return [AuditOut(id=e.id or 0, at=e.at.astimezone(UTC), actor=e.actor, actor_role=e.actor_role, action=e.action,
                     target=e.target, details=e.details)
            for e in auth.audit_entries(session=session, action=action, limit=limit)]
