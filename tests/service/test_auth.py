"""Authentication and roles: every endpoint but health and the signed webhook needs a credential; roles decide
what it may do; tokens expire; revoked credentials stop working; changes land in the audit log."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from models.security_tables import Credential
from tests import factories as f
from truckroll import auth
from truckroll.db import session_scope

OPEN = {("GET", "/healthz"), ("POST", "/service-requests"), ("POST", "/auth/token")}


@pytest.fixture
def anon(client: TestClient) -> Iterator[TestClient]:
    """The same service, without the admin's key."""
    with TestClient(client.app) as c:
        yield c


def _routes(client: TestClient) -> list[tuple[str, str]]:
    """Every operation the service documents (also those of routers added later), but the open ones."""
    paths = client.get("/openapi.json").json()["paths"]
    return [(m.upper(), p) for p, item in paths.items() for m in item if (m.upper(), p) not in OPEN]


def _call(c: TestClient, method: str, path: str, headers: dict[str, str] | None = None) -> int:
    url = path.replace("{request_id}", "1").replace("{technician_id}", "1").replace("{escalation_id}", "1")
    return c.request(method, url, params={"date": f.DAY.isoformat()}, json={}, headers=headers).status_code


def test_every_endpoint_but_health_and_the_webhook_needs_a_credential(anon: TestClient, client: TestClient) -> None:
    """Anonymous, an unknown key, a revoked key: 401 on every protected route (the tester read names and changed
    rules anonymously)."""
    routes = _routes(client)
    assert len(routes) >= 14
    revoked = f.api_key("dispatcher", "gone")
    with session_scope() as s:
        auth.revoke_user("gone", session=s)
    for method, path in routes:
        assert _call(anon, method, path) == 401, (method, path)
        assert _call(anon, method, path, {"X-API-Key": "trk_key_nope"}) == 401, (method, path)
        assert _call(anon, method, path, {"Authorization": f"Bearer {revoked}"}) == 401, (method, path)
    assert anon.get("/healthz").status_code == 200


def test_roles_decide_what_a_caller_may_do(anon: TestClient, company: dict[str, int]) -> None:
    """Dispatcher: escalations and schedules, not rules writes; integration: booking, not escalations;
    technician: their own schedule only; admin: everything."""
    day = {"date": f.DAY.isoformat()}
    disp = {"X-API-Key": f.api_key("dispatcher")}
    integ = {"X-API-Key": f.api_key("integration")}
    tech = {"X-API-Key": f.api_key("technician", technician_id=company["ana"])}
    admin = {"X-API-Key": f.api_key("admin")}
    assert anon.get("/escalations", headers=disp).status_code == 200
    assert anon.post("/rules", json={}, headers=disp).status_code == 403
    assert anon.post("/policies", json={}, headers=disp).status_code == 403
    assert anon.get("/territories", headers=disp).status_code == 200
    assert anon.get("/escalations", headers=integ).status_code == 403
    assert anon.get(f"/technicians/{company['ana']}/schedule", params=day, headers=integ).status_code == 403
    assert anon.get("/capacity", params=day, headers=integ).status_code == 200
    assert anon.get(f"/technicians/{company['ana']}/schedule", params=day, headers=tech).status_code == 200
    assert anon.get(f"/technicians/{company['ben']}/schedule", params=day, headers=tech).status_code == 403
    assert anon.get("/escalations", headers=tech).status_code == 403
    assert anon.get("/audit", headers=disp).status_code == 403
    for h in (admin,):
        assert anon.get("/escalations", headers=h).status_code == 200
        assert anon.get("/audit", headers=h).status_code == 200
        assert anon.get("/capacity", params=day, headers=h).status_code == 200


def test_technician_sees_only_their_own_jobs(anon: TestClient, client: TestClient, company: dict[str, int]) -> None:
    from tests.service.conftest import post_request

    rid = post_request(client, f.request_payload()).json()["request_id"]
    tech = {"X-API-Key": f.api_key("technician", technician_id=company["ana"])}
    assert anon.get(f"/service-requests/{rid}", headers=tech).status_code == 404
    assert client.get(f"/service-requests/{rid}").status_code == 200


def test_password_sign_in_gives_an_expiring_bearer_token(anon: TestClient) -> None:
    """POST /auth/token (OAuth2 password flow) -> a bearer token that works until it expires; a wrong password
    is a 400; only hashes are stored."""
    key = f.api_key("dispatcher", "maria", password="correct horse")
    assert anon.post("/auth/token", data={"username": "maria", "password": "wrong one"}).status_code == 400
    assert anon.post("/auth/token", data={"username": "nobody", "password": "wrong one"}).status_code == 400
    r = anon.post("/auth/token", data={"username": "maria", "password": "correct horse"})
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    assert r.json()["token_type"] == "bearer" and r.json()["expires_in"] > 0
    me = anon.get("/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["name"] == "maria" and me.json()["role"] == "dispatcher"
    with session_scope() as s:
        stored = {c.secret_hash for c in s.exec(select(Credential)).all()}
        user = auth.get_user("maria", session=s)
        assert token not in stored and key not in stored and auth.digest(token) in stored
        assert user.password_hash and "correct horse" not in user.password_hash
        assert user.password_hash.startswith("$argon2")
        for c in s.exec(select(Credential).where(Credential.kind == "token")).all():
            c.expires_at = datetime.now(UTC) - timedelta(seconds=1)
            s.add(c)
    assert anon.get("/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_openapi_declares_the_security_schemes(client: TestClient) -> None:
    """/docs can authorise: an API key header and the OAuth2 password flow; protected operations name them and
    document 401 and 403."""
    schema = client.get("/openapi.json").json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["APIKey"] == {"type": "apiKey", "in": "header", "name": "X-API-Key",
                                 "description": schemes["APIKey"]["description"]}
    assert schemes["OAuth2"]["flows"]["password"]["tokenUrl"] == "/auth/token"
    op = schema["paths"]["/escalations"]["get"]
    assert {"APIKey": []} in op["security"] and {"OAuth2": []} in op["security"]
    assert {"401", "403"} <= set(op["responses"])
    unsecured = {(m.upper(), p) for p, item in schema["paths"].items() for m, o in item.items() if "security" not in o}
    assert unsecured == OPEN, "a route without a role check (docs/security.md says how to add one)"


def test_rule_changes_and_resolutions_are_audited(client: TestClient) -> None:
    """An admin's rules change is in GET /audit with who and what; a refused change writes no entry."""
    doc = {"policies": {"scheduling": [{"boundaries": {"all": "soft"}}]}}
    r = client.post("/rules", json=doc)
    assert r.status_code == 201, r.text
    assert client.post("/rules", json={"territories": [{"name": ""}]}).status_code == 422
    entries = client.get("/audit").json()
    assert [e["action"] for e in entries] == ["rules.loaded"]
    assert entries[0]["actor"] == "root" and entries[0]["actor_role"] == "admin"
    assert client.get("/audit", params={"action": "escalation.resolved"}).json() == []


def test_rules_documents_are_bounded(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Too many items, a body over the limit, a server file reference: refused, nothing changed."""
    from truckroll.settings import get_settings

    many = {"absences": [{"technician": "Ana", "from": "2030-01-01", "until": "2030-01-02"}] * 6000}
    r = client.post("/rules", json=many)
    assert r.status_code == 422 and "more than" in r.text
    big = {"territories": [{"name": "x" * (2 * get_settings().max_body_bytes)}]}
    assert client.post("/rules", json=big).status_code == 413
    files = {"territories": [{"name": "North", "timezone": "America/Chicago", "geojson_file": "/etc/passwd"}]}
    r = client.post("/rules", json=files)
    assert r.status_code == 422 and "geojson_file" in r.text
    assert client.get("/territories").json() == []
    assert client.get("/audit").json() == []
