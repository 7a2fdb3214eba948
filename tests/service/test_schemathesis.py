"""Schemathesis over the OpenAPI schema: every operation, signed in as an admin, seeded (derandomised) and
bounded; 0 server errors, and every answer's status code, headers, content type and body as the schema
documents them (all of schemathesis's checks but one, below)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests import factories as f

# "Schema-valid request rejected" is left out: the service refuses, with 422 naming the field, input the JSON
# schema cannot express (an unknown job type, a date outside the API's range, a NUL character, a location
# outside every territory). Every other check runs, not_a_server_error among them.
EXCLUDED = [positive_data_acceptance]


def _app() -> Any:
    from flows.runs import BackgroundDispatcher
    from service.app import create_app

    # Flow starts are dropped: the run checks the HTTP layer; the database is each test's own (fixture below).
    return create_app(dispatcher=BackgroundDispatcher(mode="in-process", run=lambda rid, attempt: None),
                      init_database=False, sweep_interval_seconds=0)


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())
# About 20 operations x this many cases each keeps the run well under 90 s on a busy 2-core machine.
EXAMPLES = int(os.environ.get("TRUCKROLL_SCHEMATHESIS_EXAMPLES", "20"))


@pytest.fixture(scope="module")
def admin_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One fresh database for the run with a small company (so some cases reach real rows) and an admin's key."""
    from truckroll.db import configure, session_scope

    engine = configure(f"sqlite:///{tmp_path_factory.mktemp('schemathesis') / 'st.db'}")
    with session_scope() as s:
        f.add_job_type(s)
        f.add_technician(s, "Ana")
    yield f.api_key("admin", "schemathesis")
    engine.dispose()


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: Any, admin_key: str) -> None:
    # POST /reoptimize runs the re-optimisation (seconds, and the first flow of the run starts Prefect's
    # temporary server): a generous read timeout instead of the 10 s default.
    case.call_and_validate(headers={"X-API-Key": admin_key}, excluded_checks=EXCLUDED, timeout=180)
