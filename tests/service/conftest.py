"""An intake service on a fresh SQLite database, with a signing client (signed in as an admin) and a dispatcher
that records hand-overs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests import factories as f

SECRET = "test-secret"


class RecordingRun:
    """Stands in for the flow start: remembers which requests were handed over."""

    def __init__(self) -> None:
        self.started: list[int] = []

    def __call__(self, request_id: int, attempt: str) -> None:
        self.started.append(request_id)


_signed: set[tuple[bytes, str, int]] = set()


def signed(body: bytes | str, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Headers of a freshly signed delivery, as a sender signs every delivery afresh: the same body signed again
    gets an earlier second (within the tolerance), so its signature is new."""
    from service.security import sign

    raw = body.encode() if isinstance(body, str) else body
    t = int(time.time()) if timestamp is None else timestamp
    while timestamp is None and (raw, secret, t) in _signed:
        t -= 1
    _signed.add((raw, secret, t))
    return {"X-Truckroll-Signature": sign(raw, secret, t), "Content-Type": "application/json"}


def post_request(client: TestClient, payload: dict[str, Any], key: str | None = None) -> Any:
    body = json.dumps(payload)
    headers = signed(body)
    if key:
        headers["Idempotency-Key"] = key
    return client.post("/service-requests", content=body, headers=headers)


@pytest.fixture
def company(db: str) -> dict[str, int]:
    """One job type (leak repair, 60 min, plumbing) and two plumbers on shift 08:00-17:00."""
    from truckroll.db import session_scope

    with session_scope() as s:
        f.add_job_type(s)
        ana = f.add_technician(s, "Ana")
        ben = f.add_technician(s, "Ben")
        assert ana.id is not None and ben.id is not None
        return {"ana": ana.id, "ben": ben.id}


@pytest.fixture
def recorder() -> RecordingRun:
    return RecordingRun()


@pytest.fixture
def client(company: dict[str, int], recorder: RecordingRun, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The service with the test secret; flow starts are recorded, not run (no sweep)."""
    from flows.runs import BackgroundDispatcher
    from service.app import create_app
    from truckroll.settings import get_settings

    monkeypatch.setenv("TRUCKROLL_WEBHOOK_SECRET", SECRET)
    get_settings.cache_clear()
    app = create_app(dispatcher=BackgroundDispatcher(mode="in-process", run=recorder), init_database=False,
                     sweep_interval_seconds=0)
    with TestClient(app, headers={"X-API-Key": f.api_key("admin", "root")}) as c:
        yield c
    get_settings.cache_clear()


def count_requests() -> int:
    from sqlmodel import func, select

    from models import ServiceRequest
    from truckroll.db import session_scope

    with session_scope() as s:
        return int(s.exec(select(func.count()).select_from(ServiceRequest)).one())
