"""Company set-up as a declarative sync (truckroll.company.sync): idempotent, updates, explicit removals, unknown keys
refused with their path, all-or-nothing, export round trips (YAML and CSV), the HTTP resources, and customers
and shift patterns reaching dispatch."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlmodel import func, select

from models import JobType, Technician
from models.company_tables import Customer, ShiftException
from models.territory_tables import CustomerClosedHours, OperatingHours, TechnicianMembership
from tests.factories import DAY, at
from tests.factories import api_key as _api_key
from truckroll.company.sync import CompanyImportError, export_csv, export_document, read_document, sync
from truckroll.db import session_scope
from truckroll.settings import get_settings
from truckroll.travel.provider import get_travel_provider

DATA = Path(__file__).parent / "data" / "company_day.yaml"
SQUARE = [[-97.0, 32.6], [-96.6, 32.6], [-96.6, 33.4], [-97.0, 33.4], [-97.0, 32.6]]


def _doc() -> dict[str, Any]:
    doc = read_document(DATA)
    doc["territories"] = [{"name": "North", "timezone": "America/Chicago", "polygon": SQUARE}]
    doc["memberships"] = [{"technician": "Ana", "territory": "North", "kind": "primary", "from": "2029-01-01"}]
    return doc


def _count(model: Any) -> int:
    with session_scope() as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


def test_same_document_twice_changes_nothing(db: str) -> None:
    """The second sync creates, updates and removes nothing (memberships included: not refused as overlapping)."""
    with session_scope() as s:
        first = sync(_doc(), session=s, tz=get_settings().company_timezone)
    assert first.created["technicians"] == 1 and first.created["customers"] == 6 and first.rules["memberships"] == 1
    with session_scope() as s:
        second = sync(_doc(), session=s, tz=get_settings().company_timezone)
    assert not second.changed, second
    assert second.unchanged["customers"] == 6
    assert _count(TechnicianMembership) == 1 and _count(OperatingHours) == 5 and _count(ShiftException) == 1


def test_changes_update_and_removals_are_explicit(db: str) -> None:
    with session_scope() as s:
        sync(_doc(), session=s, tz=get_settings().company_timezone)
    doc = _doc()
    doc["technicians"][0]["skills"] = {"plumbing": 4}
    doc["technicians"][0]["shift_exceptions"] = []
    doc["customers"] = doc["customers"][:2]  # not listed: kept without --prune
    doc["memberships"][0]["until"] = "2031-12-31"
    with session_scope() as s:
        report = sync(doc, session=s, tz=get_settings().company_timezone)
    assert report.updated == {"technicians": 1, "memberships": 1} and report.removed == {"shift_exceptions": 1}
    assert not report.created
    assert report.rules == {"memberships": 1}
    assert _count(Customer) == 6 and _count(TechnicianMembership) == 1
    with session_scope() as s:
        assert s.exec(select(Technician)).one().skills == {"plumbing": 4}
        assert s.exec(select(TechnicianMembership)).one().effective_until == date(2031, 12, 31)
        report = sync(doc, session=s, tz=get_settings().company_timezone, prune=True)
    assert report.removed == {"customers": 4}
    with session_scope() as s:
        report = sync({"remove": {"technicians": ["Ana"], "customers": ["C1"], "job_types": ["leak repair"]}},
                      session=s, tz=get_settings().company_timezone)
    assert report.removed == {"technicians": 1, "customers": 1, "job_types": 1}
    with session_scope() as s:
        assert s.exec(select(Technician)).one().active is False  # deactivated, history kept
    assert _count(JobType) == 0


def test_unknown_keys_are_refused_with_their_path_and_nothing_is_written(db: str) -> None:
    doc = _doc()
    doc["technicians"][0]["max_radius_kms"] = 30
    doc["memberships"][0]["max_radius_kms"] = 30
    doc["customers"][1]["preferred_technicians"] = ["Nobody"]
    with session_scope() as s, pytest.raises(CompanyImportError) as exc:
        sync(doc, session=s, tz=get_settings().company_timezone)
    assert exc.value.errors == ["technicians[0].max_radius_kms: unknown key"]
    del doc["technicians"][0]["max_radius_kms"]
    with pytest.raises(CompanyImportError) as exc:
        with session_scope() as s:
            sync(doc, session=s, tz=get_settings().company_timezone)
    assert exc.value.errors == ["customers[1].preferred_technicians[0]: unknown technician 'Nobody'"]
    doc["customers"][1]["preferred_technicians"] = ["Ana"]
    with pytest.raises(CompanyImportError) as exc:
        with session_scope() as s:
            sync(doc, session=s, tz=get_settings().company_timezone)
    assert any(e.startswith("memberships[0].max_radius_kms: unknown key") for e in exc.value.errors)
    # Technicians and customers were valid, but the refused rules roll everything back.
    assert _count(Technician) == 0 and _count(Customer) == 0


def test_rules_file_loaded_twice_is_not_refused(db: str, tmp_path: Path) -> None:
    """`truckroll rules load` of the same memberships twice: no '(stored)' overlap, no duplicate rows."""
    from tests import factories as f
    from truckroll.rules.config import load_rules

    with session_scope() as s:
        f.add_technician(s, "Ana")
    rules = {"territories": [{"name": "North", "timezone": "America/Chicago", "polygon": SQUARE}],
             "memberships": [{"technician": "Ana", "territory": "North", "from": "2029-01-01"}],
             "shifts": [{"technician": "Ana", "start": at(18).isoformat(), "end": at(22).isoformat()}]}
    for _ in range(2):
        with session_scope() as s:
            load_rules(copy.deepcopy(rules), session=s, tz=get_settings().company_timezone)
    assert _count(TechnicianMembership) == 1
    with session_scope() as s:
        assert len(s.exec(select(Technician)).all()) == 1


def test_export_imports_back_unchanged_yaml_and_csv(db: str, tmp_path: Path) -> None:
    with session_scope() as s:
        sync(_doc(), session=s, tz=get_settings().company_timezone)
        doc = export_document(session=s, tz=get_settings().company_timezone)
        csvs = {name: export_csv(name, session=s, tz=get_settings().company_timezone)
                for name in ("technicians", "customers", "job_types")}
    path = tmp_path / "company.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    with session_scope() as s:
        assert not sync(read_document(path), session=s, tz=get_settings().company_timezone).changed
    for name, text in csvs.items():
        p = tmp_path / f"{name}.csv"
        p.write_text(text)
        with session_scope() as s:
            report = sync(read_document(p), session=s, tz=get_settings().company_timezone)
        assert not report.changed, (name, report)
    # A CSV edit updates: Ana's plumbing level 3 -> 5.
    p = tmp_path / "technicians.csv"
    p.write_text(csvs["technicians"].replace("plumbing:3", "plumbing:5"))
    with session_scope() as s:
        assert sync(read_document(p), session=s, tz=get_settings().company_timezone).updated == {"technicians": 1}
        assert s.exec(select(Technician)).one().skills == {"plumbing": 5}


def test_shift_patterns_and_customers_reach_dispatch(db: str) -> None:
    """Any weekday is worked (not only a demo day); the exception day is not; a request naming a customer
    takes their closed hours, and an unknown customer is a field error."""
    from models.schemas import RequestValidationError
    from tests.factories import TZ, request_payload
    from truckroll import store

    with session_scope() as s:
        sync(_doc(), session=s, tz=get_settings().company_timezone)
    with session_scope() as s:
        for d, worked in ((DAY, True), (DAY + timedelta(days=1), False), (DAY + timedelta(days=9), True),
                          (DAY + timedelta(days=5), False)):
            lo, hi = store.day_bounds(d, TZ)
            days = [x for x in store.technician_days(session=s, start=lo, end=hi, tz=get_settings().company_timezone,
                                                     live=get_travel_provider(get_settings()))
                    if lo <= x.shift_start < hi]
            assert bool(days) is worked, d
            if worked:
                assert (days[0].shift_start, days[0].shift_end) == (at(8, day=d), at(17, day=d))
        row, _ = store.create_request(request_payload(customer_ref="C5"), session=s,
                                      horizon_days=get_settings().planning_horizon_days,
                                      now=at(6))
        closed = s.exec(select(CustomerClosedHours).where(CustomerClosedHours.request_id == row.id)).all()
        assert [(c.weekday, c.start, c.end) for c in closed] == [(5, "08:00", "12:00")]
        with pytest.raises(RequestValidationError) as exc:
            store.validate_request(request_payload(customer_ref="C99"), session=s,
                                   horizon_days=get_settings().planning_horizon_days, now=at(6))
    assert [e.field for e in exc.value.errors] == ["customer_ref"]


@pytest.fixture
def api(db: str) -> Iterator[TestClient]:
    from flows.runs import BackgroundDispatcher
    from service.app import create_app

    app = create_app(dispatcher=BackgroundDispatcher(mode="in-process", run=lambda rid, a: None),
                     init_database=False, sweep_interval_seconds=0)
    with TestClient(app, headers={"X-API-Key": _api_key()}) as c:
        yield c


def test_company_endpoints(api: TestClient) -> None:
    """Typed resources: a bad body is a 422 naming the field, an unknown name a 404; PUT twice changes nothing."""
    doc = json.loads(json.dumps(read_document(DATA), default=str))
    assert api.put("/company/job-types", json=doc["job_types"]).status_code == 200
    assert api.put("/company/shift-patterns", json=doc["shift_patterns"]).status_code == 200
    tech = doc["technicians"][0] | {"shift_exceptions": [{"date": "2030-01-08", "day_off": True}]}
    r = api.put("/company/technicians", json=[tech])
    assert r.status_code == 200 and r.json()["created"]["technicians"] == 1
    r = api.put("/company/technicians", json=[tech])
    assert r.json()["created"] == {} and r.json()["updated"] == {}
    bad = api.put("/company/technicians", json=[tech | {"max_radius_kms": 3}])
    assert bad.status_code == 422 and "max_radius_kms" in bad.text
    bad = api.put("/company/customers", json=[{"ref": "X", "name": "X", "lat": 1, "lon": 1,
                                               "preferred_technicians": ["Zed"]}])
    assert bad.status_code == 422 and "customers[0].preferred_technicians[0]: unknown technician 'Zed'" in bad.text
    assert api.get("/company/technicians/Ana").json()["shift_pattern"] == "weekdays"
    assert api.get("/company/technicians/Zed").status_code == 404
    assert api.delete("/company/customers/nope").status_code == 404
    r = api.put("/company", json={"customers": doc["customers"]})
    assert r.status_code == 200 and r.json()["created"]["customers"] == 6
    assert len(api.get("/company/customers").json()) == 6
    assert api.delete("/company/shift-patterns/weekdays").status_code == 422  # still used by Ana
