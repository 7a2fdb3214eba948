"""POST /reoptimize: dispatchers only; a horizon over the configured maximum is a 422 naming it (no flow runs)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from service.routers.reoptimize import router
from tests.factories import api_key


def test_horizon_over_the_maximum_is_a_422_naming_the_limit(db: str) -> None:
    app = FastAPI()
    app.include_router(router)
    with TestClient(app) as anonymous:
        assert anonymous.post("/reoptimize", json={"dry_run": True}).status_code == 401
    with TestClient(app, headers={"X-API-Key": api_key("integration")}) as portal:
        assert portal.post("/reoptimize", json={"dry_run": True}).status_code == 403
    with TestClient(app, headers={"X-API-Key": api_key("dispatcher")}) as client:
        r = client.post("/reoptimize", json={"date": "2030-01-07", "horizon_days": 30, "dry_run": True})
        assert r.status_code == 422
        assert "horizon of 30 days refused" in r.json()["detail"]
        assert client.post("/reoptimize", json={"time_limit_seconds": -1}).status_code == 422
