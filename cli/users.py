"""`truckroll users`: create users, list them, issue API keys and bearer tokens, revoke (docs/security.md)."""

from __future__ import annotations

import getpass
import json
import os
from datetime import timedelta

import typer

from cli.app import app, console, fail

users_app = typer.Typer(help="Users of the service: roles, API keys, bearer tokens.", no_args_is_help=True)
app.add_typer(users_app, name="users")


def _actor() -> str:
    return f"cli:{os.environ.get('USER') or getpass.getuser()}"


def _session():  # type: ignore[no-untyped-def]
    from truckroll.db import init_db, session_scope

    init_db()
    return session_scope()


@users_app.command("create")
def create(name: str = typer.Argument(..., help="The user's name (their login)."),
           role: str = typer.Option(..., help="admin, dispatcher, technician or integration."),
           technician_id: int = typer.Option(None, help="For a technician user: the technician they are."),
           password: bool = typer.Option(False, "--password", help="Ask for a password (for POST /auth/token)."),
           key: bool = typer.Option(True, "--key/--no-key", help="Print a new API key for the user.")) -> None:
    """Create a user; prints their API key once (only its hash is stored)."""
    from models.security_tables import CredentialKind
    from truckroll import auth

    secret = None
    if password:
        secret = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    try:
        with _session() as s:
            user = auth.create_user(name, role, session=s, technician_id=technician_id, password=secret)
            api_key = auth.issue(user, CredentialKind.API_KEY, session=s)[0] if key else None
            auth.audit(s, actor=_actor(), action="users.created", target=user.name,
                       details={"role": role, "technician_id": technician_id, "password": bool(secret)})
    except auth.AuthError as exc:
        raise fail(str(exc)) from None
    console.print(f"user {name!r} ({role}) created")
    if api_key:
        console.print("API key (shown once; send it as X-API-Key):")
        typer.echo(api_key)


@users_app.command("key")
def new_key(name: str = typer.Argument(...)) -> None:
    """Issue another API key for a user (e.g. to rotate: issue, switch, then revoke the old one)."""
    from models.security_tables import CredentialKind
    from truckroll import auth

    try:
        with _session() as s:
            api_key, cred = auth.issue(auth.get_user(name, session=s), CredentialKind.API_KEY, session=s)
            auth.audit(s, actor=_actor(), action="users.key_issued", target=name, details={"prefix": cred.prefix})
    except auth.AuthError as exc:
        raise fail(str(exc)) from None
    typer.echo(api_key)


@users_app.command("token")
def token(name: str = typer.Argument(...),
          hours: float = typer.Option(None, help="Lifetime (default TRUCKROLL_TOKEN_TTL_MINUTES).")) -> None:
    """Issue a bearer token for a user (Authorization: Bearer ...), e.g. for a script; it expires."""
    from models.security_tables import CredentialKind
    from truckroll import auth
    from truckroll.settings import get_settings

    ttl = timedelta(hours=hours) if hours else timedelta(minutes=get_settings().token_ttl_minutes)
    if ttl <= timedelta(0):
        raise fail("--hours must be positive")
    try:
        with _session() as s:
            secret, cred = auth.issue(auth.get_user(name, session=s), CredentialKind.TOKEN, session=s, ttl=ttl)
            auth.audit(s, actor=_actor(), action="users.token_issued", target=name,
                       details={"prefix": cred.prefix, "expires_at": str(cred.expires_at)})
    except auth.AuthError as exc:
        raise fail(str(exc)) from None
    typer.echo(secret)


@users_app.command("list")
def list_users(as_json: bool = typer.Option(False, "--json")) -> None:
    """Every user, role and active credential (prefixes only)."""
    from truckroll import auth

    with _session() as s:
        rows = auth.list_users(session=s)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for u in rows:
        state = "" if u["active"] else " (revoked)"
        tech = f" technician {u['technician_id']}" if u["technician_id"] else ""
        creds = ", ".join(f"{c['prefix']}… ({c['kind']})" for c in u["credentials"]) or "-"
        console.print(f"{u['name']}: {u['role']}{tech}{state}; credentials: {creds}")


@users_app.command("revoke")
def revoke(name: str = typer.Argument(None, help="Revoke the user and every credential they hold."),
           key: str = typer.Option(None, "--key", help="Revoke only this credential (its prefix, from `list`).")
           ) -> None:
    """Revoke a user (all their keys and tokens stop working at once) or a single credential."""
    from truckroll import auth

    if (name is None) == (key is None):
        raise fail("give a user name or --key PREFIX")
    try:
        with _session() as s:
            if key:
                cred = auth.revoke_credential(key, session=s)
                auth.audit(s, actor=_actor(), action="users.key_revoked", target=cred.prefix)
                message = f"credential {cred.prefix}… revoked"
            else:
                n = auth.revoke_user(name, session=s)
                auth.audit(s, actor=_actor(), action="users.revoked", target=name, details={"credentials": n})
                message = f"user {name!r} revoked ({n} credential(s))"
    except auth.AuthError as exc:
        raise fail(str(exc)) from None
    console.print(message)
