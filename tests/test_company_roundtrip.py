"""The whole company set-up as a user moves it: export then import changes nothing (YAML, a CSV folder, a zip),
a fresh database given the export exports the same file, removals are explicit in every section and the same
removals twice change nothing, prune covers the rule sections, and CSV errors name the file, row and column."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select

from models import Shift, Technician
from models.company_tables import Customer, ShiftException
from models.territory_tables import (
    OperatingHours,
    SchedulingPolicy,
    ShiftScope,
    TechnicianAbsence,
    TechnicianMembership,
    Territory,
    TravelPolicyRecord,
)
from tests.factories import api_key as _api_key
from truckroll.company.sync import CompanyImportError, read_document, sync
from truckroll.db import session_scope
from truckroll.settings import get_settings

FULL = Path(__file__).parent / "data" / "company_full.yaml"


def _ok(url: str, *args: str) -> str:
    """``truckroll company ARGS`` against the database at ``url`` (in this process: the CLI's own code, without a
    Python start per call), its output on one line; the test's own database is configured again afterwards."""
    from typer.testing import CliRunner

    from cli import app
    from truckroll.db import configure

    before = os.environ["TRUCKROLL_DATABASE_URL"]
    configure(url)
    try:
        r = CliRunner().invoke(app, ["company", *args])
    finally:
        configure(before)
    assert r.exit_code == 0, r.output
    return " ".join(r.stdout.split())


def _count(model: Any) -> int:
    with session_scope() as s:
        return int(s.exec(select(func.count()).select_from(model)).one())


def _full() -> dict[str, Any]:
    return read_document(FULL)


def test_export_import_export_is_a_round_trip(db: str, tmp_path: Path) -> None:
    """With the CLI: every section is exported (policies, dated shifts, absences, weekly hours included);
    importing the export reports no change; a fresh database given the export (YAML, CSV folder, zip) exports
    the very same file."""
    out = _ok(db, "import", str(FULL))
    assert "3 technicians created" in out and "4 memberships created" in out and "2 shifts created" in out
    assert "1 absences created" in out and "2 travel policies created" in out and "2 scheduling policies created" in out
    exported = tmp_path / "a.yaml"
    _ok(db, "export", str(exported))
    text = exported.read_text()
    for needle in ("shifts:", "absences:", "operating_hours:", "policies:", "travel:", "radius_centre:",
                   "all_territories: true", "2030-01-10"):
        assert needle in text, needle
    assert _ok(db, "import", str(exported)) == "nothing changed"
    again = tmp_path / "a2.yaml"
    _ok(db, "export", str(again))
    assert again.read_text() == text

    _ok(db, "export", str(tmp_path / "csv"))
    _ok(db, "export", str(tmp_path / "company.zip"))
    assert sorted(p.name for p in (tmp_path / "csv").iterdir()) == sorted(
        f"{s}.csv" for s in ("job_types", "shift_patterns", "technicians", "customers", "territories",
                             "memberships", "shifts", "operating_hours", "absences", "scheduling_policies",
                             "travel_policies"))
    assert _ok(db, "import", str(tmp_path / "csv")) == "nothing changed"
    assert _ok(db, "import", str(tmp_path / "company.zip")) == "nothing changed"

    for i, source in enumerate((exported, tmp_path / "csv", tmp_path / "company.zip")):
        fresh = f"sqlite:///{tmp_path / f'fresh{i}.db'}"
        assert "3 technicians created" in _ok(fresh, "import", str(source))
        back = tmp_path / f"fresh{i}.yaml"
        _ok(fresh, "export", str(back))
        assert back.read_text() == text, source


REMOVE_ALL = {
    "technicians": ["Cy"],
    "customers": ["CRM-2"],
    "job_types": ["boiler service"],
    "shift_patterns": [],
    "shift_exceptions": [{"technician": "Ana", "date": "2030-01-10"}],
    "memberships": [{"technician": "Cy", "territory": "Dallas North", "kind": "relocation", "from": "2030-02-01"}],
    "shifts": [{"technician": "Cy", "start": "2030-01-12T18:00:00-06:00", "end": "2030-01-12T23:00:00-06:00"}],
    "absences": [{"technician": "Ben", "start": "2030-01-09T06:00:00+00:00", "end": "2030-01-11T06:00:00+00:00"}],
    "operating_hours": ["Cy"],
    "policies": {"scheduling": [{"territory": "Dallas North"}], "travel": [{"technician": "Ben"}, {}]},
}


def test_removals_are_explicit_in_every_section_and_idempotent(db: str) -> None:
    with session_scope() as s:
        sync(_full(), session=s, tz=get_settings().company_timezone)
    with session_scope() as s:
        report = sync({"remove": copy.deepcopy(REMOVE_ALL)}, session=s, tz=get_settings().company_timezone)
    assert report.removed == {"technicians": 1, "customers": 1, "job_types": 1, "shift_exceptions": 1,
                              "memberships": 1, "shifts": 1, "absences": 1, "operating_hours": 1,
                              "scheduling_policies": 1, "travel_policies": 2}, report
    assert not report.notes
    assert _count(TechnicianMembership) == 3 and _count(Shift) == 1 and _count(ShiftScope) == 0
    assert _count(TechnicianAbsence) == 0 and _count(ShiftException) == 1 and _count(TravelPolicyRecord) == 0
    assert _count(SchedulingPolicy) == 1 and _count(Customer) == 1
    with session_scope() as s:
        cy = s.exec(select(Technician).where(Technician.name == "Cy")).one()
        assert cy.active is False  # deactivated: its history stays
        assert not s.exec(select(OperatingHours).where(OperatingHours.technician_id == cy.id)).all()
        # Ana's pattern hours are untouched.
        assert len(s.exec(select(OperatingHours).where(OperatingHours.technician_id != cy.id)).all()) == 10
    # The same removals again: nothing changes, and each one says it found nothing.
    with session_scope() as s:
        again = sync({"remove": copy.deepcopy(REMOVE_ALL)}, session=s, tz=get_settings().company_timezone)
    assert not again.changed
    # Cy is already inactive (no note); the other ten removals each find nothing.
    assert len(again.notes) == 10, again.notes
    assert "remove.memberships[0]: no relocation membership of 'Cy' in 'Dallas North' from 2030-02-01 " \
           "(nothing to remove)" in again.notes


def test_removals_that_contradict_or_leave_references_are_refused(db: str) -> None:
    with session_scope() as s:
        sync(_full(), session=s, tz=get_settings().company_timezone)
    bad = _full()
    bad["remove"] = {"territories": ["Dallas North"], "operating_hours": ["Ana"],
                     "memberships": [{"technician": "Ana", "territory": "Dallas", "from": "2029-01-01"}],
                     "customers": ["CRM-1"]}
    with pytest.raises(CompanyImportError) as exc:
        with session_scope() as s:
            sync(bad, session=s, tz=get_settings().company_timezone)
    errors = exc.value.errors
    assert "remove.customers[0]: 'CRM-1' is both listed and removed" in errors
    assert "remove.memberships[0]: this membership is both listed and removed" in errors
    assert any(e.startswith("remove.operating_hours[0]: 'Ana' works 'weekdays'") for e in errors)
    assert any(e.startswith("remove.territories[0]: territory 'Dallas North' is still used by membership of Ben")
               for e in errors), errors
    assert _count(Customer) == 2 and _count(Territory) == 2  # nothing was written
    # A territory goes once nothing uses it: its memberships, children and policy in the same document.
    gone = {"remove": {"territories": ["Dallas North"], "memberships": [
        {"technician": "Ben", "territory": "Dallas North", "from": "2029-01-01"},
        {"technician": "Cy", "territory": "Dallas North", "kind": "relocation", "from": "2030-02-01"}]}}
    with session_scope() as s:
        report = sync(gone, session=s, tz=get_settings().company_timezone)
    assert report.removed == {"memberships": 2, "scheduling_policies": 1, "territories": 1}
    assert _count(Territory) == 1 and _count(SchedulingPolicy) == 1


def test_prune_covers_the_rule_sections(db: str) -> None:
    """With prune, a listed rule section keeps only what it names; sections not given are left alone."""
    with session_scope() as s:
        sync(_full(), session=s, tz=get_settings().company_timezone)
    doc = _full()
    doc["memberships"] = doc["memberships"][:2]
    doc["shifts"] = doc["shifts"][:1]
    doc["policies"] = {"travel": doc["policies"]["travel"][:1]}
    del doc["absences"]
    with session_scope() as s:
        report = sync(doc, session=s, tz=get_settings().company_timezone, prune=True)
    assert report.removed == {"memberships": 2, "shifts": 1, "travel_policies": 1}, report
    assert _count(TechnicianAbsence) == 1 and _count(SchedulingPolicy) == 2
    with session_scope() as s:
        assert not sync(doc, session=s, tz=get_settings().company_timezone, prune=True).changed


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_csv_errors_name_the_file_row_and_column(db: str, tmp_path: Path) -> None:
    tech = "name,home_lat,home_lon,skills,active\nAna,32.8,-96.8,plumbing:3,true\nBen,32.9,-96.7,plumbing:x,maybe\n"
    folder = _write(tmp_path / "bad", {"technicians.csv": tech, "shifts.csv": "technician,start,max_prio\n"})
    with pytest.raises(CompanyImportError) as exc:
        read_document(folder)
    assert sorted(exc.value.errors) == [
        "shifts.csv column 'max_prio': unknown column (allowed: technician, start, end, kind, max_priority, "
        "all_territories, remove)",
        "technicians.csv row 3 column active: 'maybe' is not true or false",
        "technicians.csv row 3 column skills: 'x' is not a whole number"]
    # Cells that type well but fail validation: the model's and the rules' errors name file, row and column.
    folder = _write(tmp_path / "bad2", {
        "technicians.csv": "name,home_lat,home_lon,skills\nAna,32.8,-96.8,plumbing:9\n",
        "customers.csv": "ref,name,lat,lon\nC1,Cust,95,-96.8\n",
        "memberships.csv": "technician,territory,from\nAna,Dallas,2029-01-01\nZed,Dallas,2029-01-01\n",
        "territories.csv": 'name,timezone,geojson\nDallas,America/Chicago,"{""type"":""Polygon"",""coordinates"":'
                           '[[[-97,32],[-96,32],[-96,33],[-97,32]]]}"\n'})
    with pytest.raises(CompanyImportError) as exc:
        with session_scope() as s:
            sync(read_document(folder), session=s, tz=get_settings().company_timezone)
    errors = exc.value.errors
    assert any(e.startswith("technicians.csv row 2 column skills: technicians[0].skills") for e in errors), errors
    assert any(e.startswith("customers.csv row 2 column lat: customers[0].lat") for e in errors), errors
    folder3 = _write(tmp_path / "bad3", {
        "technicians.csv": "name,home_lat,home_lon\nAna,32.8,-96.8\n",
        "memberships.csv": "technician,territory,from,max_radius_kms\nZed,Dallas,2029-01-01,\n"})
    with pytest.raises(CompanyImportError) as exc:
        read_document(folder3)
    assert exc.value.errors[0].startswith("memberships.csv column 'max_radius_kms': unknown column")
    (folder3 / "memberships.csv").write_text("technician,territory,from\nAna,Dallas,2029-01-01\n"
                                             "Zed,Dallas,2029-01-01\n")
    (folder3 / "territories.csv").write_text((folder / "territories.csv").read_text())
    with pytest.raises(CompanyImportError) as exc:
        with session_scope() as s:
            sync(read_document(folder3), session=s, tz=get_settings().company_timezone)
    assert exc.value.errors == ["memberships.csv row 3: memberships[1] (Zed in Dallas): unknown technician 'Zed'"]
    assert _count(Technician) == 0 and _count(Territory) == 0  # all or nothing


def test_a_csv_row_marked_remove_removes(db: str, tmp_path: Path) -> None:
    with session_scope() as s:
        sync(_full(), session=s, tz=get_settings().company_timezone)
    folder = _write(tmp_path / "rm", {
        "memberships.csv": "technician,territory,kind,from,remove\nCy,Dallas North,relocation,2030-02-01,true\n",
        "customers.csv": "ref,name,lat,lon,remove\nCRM-2,,,,yes\n",
        "travel_policies.csv": "technician,remove\n,true\n"})
    with session_scope() as s:
        report = sync(read_document(folder), session=s, tz=get_settings().company_timezone)
    assert report.removed == {"customers": 1, "memberships": 1, "travel_policies": 1}
    with session_scope() as s:
        assert not sync(read_document(folder), session=s, tz=get_settings().company_timezone).changed


def test_put_company_round_trips_and_removes(db: str) -> None:
    """The API: GET /company is what PUT /company takes; PUT of it changes nothing; removals go in the body."""
    import json

    from flows.runs import BackgroundDispatcher
    from service.app import create_app

    app = create_app(dispatcher=BackgroundDispatcher(mode="in-process", run=lambda rid, a: None),
                     init_database=False, sweep_interval_seconds=0)
    with TestClient(app, headers={"X-API-Key": _api_key()}) as c:
        body = json.loads(json.dumps({k: v for k, v in _full().items() if not k.startswith("_")}, default=str))
        r = c.put("/company", json=body)
        assert r.status_code == 200, r.text
        assert r.json()["created"]["technicians"] == 3
        got = c.get("/company").json()
        assert {"shifts", "absences", "operating_hours", "policies"} <= set(got)
        r = c.put("/company", json=got)
        assert r.status_code == 200 and not any(r.json()[k] for k in ("created", "updated", "removed", "rules"))
        r = c.put("/company", json={"remove": {"memberships": [
            {"technician": "Cy", "territory": "Dallas North", "kind": "relocation", "from": "2030-02-01"}]}})
        assert r.status_code == 200 and r.json()["removed"] == {"memberships": 1}, r.text
        # Typed memberships: restating one twice changes it once; a bad kind or a misspelt key is a 422.
        m = {"technician": "Cy", "territory": "Dallas North", "kind": "secondary", "from": "2030-03-01",
             "max_radius_km": 25}
        assert c.put("/company/memberships", json=[m]).json()["rules"] == {"memberships": 1}
        assert c.put("/company/memberships", json=[m]).json()["rules"] == {}
        assert {"technician": "Cy", "territory": "Dallas North", "kind": "secondary", "from": "2030-03-01",
                "max_radius_km": 25.0} in c.get("/company/memberships").json()
        bad = c.put("/company/memberships", json=[m | {"kind": "temp", "max_radius_kms": 3}])
        assert bad.status_code == 422
        assert {tuple(e["loc"]) for e in bad.json()["detail"]} == {("body", 0, "kind"), ("body", 0, "max_radius_kms")}
        r = c.put("/company", json={"remove": {"shifts": [{"technician": "Cy", "start": "2030-01-12T08:00:00"}]}})
        assert r.status_code == 422
        assert {(tuple(e["loc"]), e["type"]) for e in r.json()["detail"]} == {
            (("body", "remove", "shifts", 0, "start"), "timezone_aware")}
        r = c.put("/company", json={"remove": {"shifts": [{"technician": "Cy", "start": "2030-01-12T08:00:00Z"}]}})
        assert r.status_code == 422 and "give date (YYYY-MM-DD), or start and end" in r.text, r.text


def test_a_restated_shift_or_absence_is_updated_not_added(db: str) -> None:
    """Shifts and absences are matched by technician, start and end: a changed kind, priority, scope or reason
    updates the stored one."""
    with session_scope() as s:
        sync(_full(), session=s, tz=get_settings().company_timezone)
    doc = _full()
    doc["shifts"][1] |= {"max_priority": 1, "all_territories": False}
    doc["absences"][0]["reason"] = "sick"
    with session_scope() as s:
        report = sync(doc, session=s, tz=get_settings().company_timezone)
    assert report.rules == {"shifts": 1, "absences": 1}, report
    with session_scope() as s:
        on_call = s.exec(select(Shift).where(Shift.kind == "on_call")).one()
        assert on_call.max_priority == 1
        assert s.exec(select(ShiftScope)).one().all_territories is False
        assert s.exec(select(TechnicianAbsence)).one().reason == "sick"
    assert _count(Shift) == 2 and _count(TechnicianAbsence) == 1
    with session_scope() as s:
        assert not sync(doc, session=s, tz=get_settings().company_timezone).changed
