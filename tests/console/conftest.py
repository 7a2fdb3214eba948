"""A small company for the console: Ana (Dallas) and Ben (skill 5, territory Far) under hard boundaries, on the
factories' Monday; a dispatcher who signs in with a password; requests dispatched as the flow's steps do."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests import factories as f
from truckroll.settings import get_settings

SECRET = "console-secret"
PASSWORD = "correct horse battery"
BOX_ALL = [[-97.0, 32.0], [-96.0, 32.0], [-96.0, 33.5], [-97.0, 33.5], [-97.0, 32.0]]
BOX_FAR = [[-97.6, 32.0], [-97.1, 32.0], [-97.1, 33.5], [-97.6, 33.5], [-97.6, 32.0]]


def seed_company() -> dict[str, int]:
    from truckroll.db import session_scope
    from truckroll.rules.config import load_rules

    with session_scope() as s:
        f.add_job_type(s)
        ana = f.add_technician(s, "Ana")
        ben = f.add_technician(s, "Ben", skills={"plumbing": 5}, home=f.north_km(5))
        assert ana.id is not None and ben.id is not None
        ids = {"ana": ana.id, "ben": ben.id}
    with session_scope() as s:
        load_rules({"territories": [{"name": "Dallas", "timezone": "America/Chicago", "polygon": BOX_ALL},
                                    {"name": "Far", "timezone": "America/Chicago", "polygon": BOX_FAR}],
                    "memberships": [{"technician": "Ana", "territory": "Dallas"},
                                    {"technician": "Ben", "territory": "Far"}],
                    "policies": {"scheduling": [{"boundaries": "hard"}]}},
                   session=s, tz=get_settings().company_timezone)
    return ids


def dispatch(request_id: int) -> int:
    """What the dispatch flow does for a stored request (the one decision, then commit or escalate)."""
    from truckroll import store
    from truckroll.db import session_scope
    from truckroll.dispatch import commit, decision
    from truckroll.settings import get_settings
    from truckroll.travel.provider import get_travel_provider

    st, travel = get_settings(), get_travel_provider(get_settings())
    with session_scope() as s:
        loaded, d = decision.decide_request(request_id, session=s, travel=travel, rules=st.dispatch,
                                            tz=get_settings().company_timezone)
        if d.chosen is None:
            reasons = {str(c.technician_id): {"name": c.name, "reasons": list(c.reasons)} for c in d.candidates}
            store.open_escalation(request_id, d.escalation_reason or "no technician", reasons, session=s)
        else:
            result = commit.commit_assignment(d, loaded.job, session=s, travel=travel,
                                              settings=st)
            commit.write_confirmation(result, session=s)
    return request_id


def payload(**overrides: Any) -> dict[str, Any]:
    return f.request_payload(**overrides)


# A request only Ben's skill can serve, but Ben works in another territory: escalated; the territory can be
# overridden with a reason.
HARD_JOB = {"required_skills": {"plumbing": 5}, "customer_name": "Hal Moreno", "customer_email": "hal@example.net",
            "address": "7 Elm St, Dallas, TX"}


def signed_headers(body: bytes) -> dict[str, str]:
    from truckroll.client import sign

    return {"X-Truckroll-Signature": sign(body, SECRET), "Content-Type": "application/json"}


def as_body(data: dict[str, Any]) -> bytes:
    return json.dumps(data).encode()


@pytest.fixture
def company(db: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, int]]:
    from truckroll.settings import get_settings

    monkeypatch.setenv("TRUCKROLL_WEBHOOK_SECRET", SECRET)
    get_settings.cache_clear()
    ids = seed_company()
    yield ids
    get_settings.cache_clear()
