"""Who may call what: FastAPI dependencies over truckroll.auth (docs/security.md).

A caller sends an API key (``X-API-Key: trk_key_...``, for integrations and scripts) or a bearer token
(``Authorization: Bearer trk_tok_...`` from ``POST /auth/token``, the OAuth2 password flow a browser console
uses). Both are declared as OpenAPI security schemes, so /docs can authorise.

Protect a route or a whole router with ``require_roles``; admin passes every role check::

    router = APIRouter(prefix="/things", dependencies=[Depends(require_roles("dispatcher"))],
                       responses=AUTH_RESPONSES)

    @router.post("/{thing_id}")
    def change(thing_id: DbId, who: Annotated[Principal, Depends(require_roles("dispatcher"))]) -> ...:
        ...  # who.name, who.role, who.technician_id
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Security, status
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer

from models.security_tables import Role
from service.deps import SessionDep
from service.errors import ErrorOut
from truckroll.auth import ROLES, Principal, authenticate

__all__ = ["AUTH_RESPONSES", "ErrorOut", "Principal", "Role", "current_principal", "require_roles"]

API_KEY_HEADER = "X-API-Key"
api_key_scheme = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, scheme_name="APIKey",
                              description="An API key from `truckroll users create` or `truckroll users key`.")
bearer_scheme = OAuth2PasswordBearer(tokenUrl="/auth/token", auto_error=False, scheme_name="OAuth2",
                                     description="A user name and password (set with `truckroll users create "
                                                 "--password`) exchanged for a bearer token.")

AUTH_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No credential, or an unknown, revoked or expired one"},
    403: {"model": ErrorOut, "description": "The caller's role may not do this"},
}


def _unauthenticated(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"})


def current_principal(session: SessionDep,
                      api_key: Annotated[str | None, Security(api_key_scheme)] = None,
                      token: Annotated[str | None, Security(bearer_scheme)] = None) -> Principal:
    """The authenticated caller; 401 without a valid API key or bearer token."""
    secret = api_key or token
    if not secret:
        raise _unauthenticated(f"authentication required: send {API_KEY_HEADER} or Authorization: Bearer")
    principal = authenticate(secret, session=session)
    if principal is None:
        raise _unauthenticated("unknown, revoked or expired credential")
    return principal


def require_roles(*roles: str) -> Callable[..., Principal]:
    """A dependency that answers the caller's Principal when their role is one of ``roles`` (or admin), else 403.

    ``require_roles()`` with no role admits admins only.
    """
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise ValueError(f"unknown roles {unknown}; roles are {ROLES}")
    allowed = frozenset(roles) | {Role.ADMIN.value}

    def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if principal.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"role {principal.role!r} may not do this (needs {' or '.join(sorted(allowed))})")
        return principal

    check.__name__ = f"require_{'_or_'.join(sorted(allowed))}"
    return check


Admin = Annotated[Principal, Depends(require_roles())]
Dispatcher = Annotated[Principal, Depends(require_roles(Role.DISPATCHER))]
