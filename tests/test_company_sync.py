"""Each section's identity in the declarative sync: import A, then A' (one item's times or values changed) ->
exactly that item updated, nothing added or removed; A' again changes nothing; and the database exports what a
fresh database given A' exports. Territories are removed explicitly, or pruned, and refused while used."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import func, select

from models import Shift
from models.territory_tables import TechnicianAbsence, TechnicianMembership, Territory
from tests.factories import api_key
from truckroll.company.sync import CompanyImportError, export_document, read_document, sync
from truckroll.db import configure, session_scope
from truckroll.settings import get_settings

FULL = Path(__file__).parent / "data" / "company_full.yaml"


def _full() -> dict[str, Any]:
    return read_document(FULL)


def _tech(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(t for t in doc["technicians"] if t["name"] == name)


def _set(path: Callable[[dict[str, Any]], dict[str, Any]], **values: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        path(doc).update(values)
    return change


def _both_shifts_moved(doc: dict[str, Any]) -> None:
    morning, evening = doc["shifts"]
    morning |= {"start": "2030-01-12T07:00:00-06:00", "end": "2030-01-12T11:00:00-06:00"}
    evening |= {"start": "2030-01-12T17:00:00-06:00", "end": "2030-01-12T22:00:00-06:00"}
    doc["shifts"] = [evening, morning]


CHANGES: dict[str, tuple[Callable[[dict[str, Any]], None], dict[str, int]]] = {
    # Cy has two shifts on 2030-01-12 (08-12 regular, 18-23 on call): a changed one is that day's, not a third.
    "shift times": (_set(lambda d: d["shifts"][0], start="2030-01-12T09:00:00-06:00",
                         end="2030-01-12T13:30:00-06:00"), {"shifts": 1}),
    "on-call shift times": (_set(lambda d: d["shifts"][1], start="2030-01-12T19:00:00-06:00"), {"shifts": 1}),
    "both shifts of a day, listed in reverse order": (_both_shifts_moved, {"shifts": 2}),
    "absence end": (_set(lambda d: d["absences"][0], end="2030-01-12T00:00:00-06:00"), {"absences": 1}),
    "membership until": (_set(lambda d: d["memberships"][1], until="2032-06-30"), {"memberships": 1}),
    "shift exception hours": (_set(lambda d: _tech(d, "Ana")["shift_exceptions"][1], start="11:00", end="15:00"),
                              {"shift_exceptions": 1}),
    "closed hours": (_set(lambda d: d["customers"][0], closed_hours=[
        {"days": ["mon", "wed"], "start": "12:30", "end": "14:00"}]), {"customers": 1}),
    "certification expiry": (_set(lambda d: _tech(d, "Ana"), certifications={"backflow": "2032-06-30"}),
                             {"technicians": 1}),
    "skill level": (_set(lambda d: _tech(d, "Ben"), skills={"hvac": 4}), {"technicians": 1}),
    "van stock": (_set(lambda d: _tech(d, "Ana"), van_inventory={"valve": 3, "washer": 10}), {"technicians": 1}),
    # A pattern's hours are its technicians' weekly hours: the pattern and Ana's hours are updated.
    "pattern hours": (_set(lambda d: d["shift_patterns"][0], hours=[
        {"days": "weekdays", "start": "08:00", "end": "16:00"}]), {"shift_patterns": 1, "operating_hours": 1}),
    "weekly hours": (_set(lambda d: d["operating_hours"][0], hours=[
        {"days": ["mon", "tue"], "start": "10:00", "end": "18:00"}]), {"operating_hours": 1}),
    "territory visiting hours": (_set(lambda d: d["territories"][0], visiting_hours=[
        {"days": "weekdays", "start": "08:00", "end": "18:00"}]), {"territories": 1}),
    "travel policy": (_set(lambda d: d["policies"]["travel"][1], outbound_own_minutes=25), {"travel_policies": 1}),
    "scheduling policy": (_set(lambda d: d["policies"]["scheduling"][0], boundaries="hard"),
                          {"scheduling_policies": 1}),
}


def _rows() -> tuple[int, int, int, int]:
    with session_scope() as s:
        return tuple(int(s.exec(select(func.count()).select_from(m)).one())  # type: ignore[return-value]
                     for m in (Shift, TechnicianAbsence, TechnicianMembership, Territory))


@pytest.mark.parametrize("what", list(CHANGES))
def test_a_changed_item_is_updated_not_added(db: str, tmp_path: Path, what: str) -> None:
    change, updated = CHANGES[what]
    with session_scope() as s:
        sync(_full(), session=s, tz=get_settings().company_timezone)
    rows = _rows()
    changed = _full()
    change(changed)
    with session_scope() as s:
        report = sync(copy.deepcopy(changed), session=s, tz=get_settings().company_timezone)
    assert report.updated == updated and not report.created and not report.removed, report
    assert _rows() == rows  # nothing added, nothing removed
    with session_scope() as s:
        assert not sync(copy.deepcopy(changed), session=s, tz=get_settings().company_timezone).changed
        exported = export_document(session=s, tz=get_settings().company_timezone)
    # A database given A' alone exports the same document.
    engine = configure(f"sqlite:///{tmp_path / 'fresh.db'}")
    try:
        with session_scope() as s:
            sync(copy.deepcopy(changed), session=s, tz=get_settings().company_timezone)
            assert export_document(session=s, tz=get_settings().company_timezone) == exported
    finally:
        engine.dispose()
        configure(db)


def test_shifts_and_absences_are_removed_by_technician_and_date(db: str) -> None:
    with session_scope() as s:
        sync(_full(), session=s, tz=get_settings().company_timezone)
    gone = {"remove": {"shifts": [{"technician": "Cy", "date": "2030-01-12"}],
                       "absences": [{"technician": "Ben", "date": "2030-01-09"}]}}
    with session_scope() as s:
        report = sync(copy.deepcopy(gone), session=s, tz=get_settings().company_timezone)
    assert report.removed == {"shifts": 2, "absences": 1}, report
    assert _rows()[:2] == (0, 0)
    with session_scope() as s:
        again = sync(copy.deepcopy(gone), session=s, tz=get_settings().company_timezone)
    assert not again.changed
    assert again.notes == ["remove.shifts[0]: no shift of 'Cy' on 2030-01-12 (nothing to remove)",
                           "remove.absences[0]: no absence of 'Ben' on 2030-01-09 (nothing to remove)"]
    # Listing a day and removing it is a contradiction.
    doc = _full() | gone
    with pytest.raises(CompanyImportError) as exc:
        with session_scope() as s:
            sync(doc, session=s, tz=get_settings().company_timezone)
    assert "remove.shifts[0]: both listed and removed" in exc.value.errors


def test_prune_keeps_the_restated_shift_of_a_day(db: str) -> None:
    """Prune removes the shifts the file does not restate; a restated one with other times is updated."""
    with session_scope() as s:
        sync(_full(), session=s, tz=get_settings().company_timezone)
    doc = _full()
    doc["shifts"] = [doc["shifts"][0] | {"end": "2030-01-12T12:30:00-06:00"}]
    with session_scope() as s:
        report = sync(doc, session=s, tz=get_settings().company_timezone, prune=True)
    assert report.updated.get("shifts") == 1 and report.removed.get("shifts") == 1 and "shifts" not in report.created
    with session_scope() as s:
        shift = s.exec(select(Shift)).one()
        assert shift.kind == "regular"


def test_territories_are_pruned_unless_used(db: str) -> None:
    with session_scope() as s:
        sync(_full(), session=s, tz=get_settings().company_timezone)
    doc = _full()
    doc["territories"] = doc["territories"][:1]  # Dallas North not listed
    with pytest.raises(CompanyImportError) as exc:
        with session_scope() as s:
            sync(copy.deepcopy(doc), session=s, tz=get_settings().company_timezone, prune=True)
    assert any(e.startswith("territories (Dallas North: not listed, so --prune removes it): territory "
                            "'Dallas North' is still used by membership of Ben") for e in exc.value.errors), \
        exc.value.errors
    assert _rows()[3] == 2  # nothing was written
    # Without the memberships that use it, prune removes it (and its own scheduling policy).
    doc["memberships"] = [m for m in doc["memberships"] if m["territory"] != "Dallas North"]
    doc["policies"]["scheduling"] = doc["policies"]["scheduling"][:1]
    with session_scope() as s:
        report = sync(copy.deepcopy(doc), session=s, tz=get_settings().company_timezone, prune=True)
    assert report.removed.get("territories") == 1 and report.removed.get("memberships") == 2, report
    with session_scope() as s:
        assert [t.name for t in s.exec(select(Territory)).all()] == ["Dallas"]
        assert not sync(copy.deepcopy(doc), session=s, tz=get_settings().company_timezone, prune=True).changed
    # Without prune, a territory the file does not list stays.
    with session_scope() as s:
        sync(_full(), session=s, tz=get_settings().company_timezone)
        assert not sync({"territories": doc["territories"]}, session=s, tz=get_settings().company_timezone).removed


def test_delete_territory_answers_409_naming_its_users(db: str) -> None:
    from service.app import create_app

    with session_scope() as s:
        sync(_full(), session=s, tz=get_settings().company_timezone)
    with TestClient(create_app()) as c:
        headers = {"X-API-Key": api_key("admin")}
        names = [t["name"] for t in c.get("/company/territories", headers=headers).json()]
        assert names == ["Dallas", "Dallas North"]
        r = c.delete("/company/territories/Dallas", headers=headers)
        assert r.status_code == 409, r.text
        assert "territory 'Dallas' is still used by" in r.text and "territory Dallas North" in r.text
        assert c.delete("/company/territories/Nowhere", headers=headers).status_code == 404
        assert c.delete("/company/territories/Dallas North",
                        headers={"X-API-Key": api_key("dispatcher")}).status_code == 403
        c.put("/company", headers=headers, json={"remove": {"memberships": [
            {"technician": "Ben", "territory": "Dallas North", "from": "2029-01-01"},
            {"technician": "Cy", "territory": "Dallas North", "kind": "relocation", "from": "2030-02-01"}]}})
        r = c.delete("/company/territories/Dallas North", headers=headers)
        assert r.status_code == 200 and r.json()["removed"]["territories"] == 1, r.text
    assert _rows()[3] == 1
