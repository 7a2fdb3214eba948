"""Rules configuration: loading (YAML, GeoJSON import), refusing bad configuration atomically, and the rules as
the store hands them to the engine (territory of a request, boundary mode per weekday, merged availability,
absences, on-call scope, why-not).

The map: a region holding West (lon -97.0..-96.8) and East (lon -96.8..-96.5), lat 32.5..33.0. Monday 2030-01-07.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from engine.config import DispatchSettings
from engine.dispatch.decision import decide
from engine.travel import GreatCircleTravel
from models import Location, Shift
from models.territory_tables import (
    OperatingHours,
    SchedulingPolicy,
    TechnicianAbsence,
    TechnicianMembership,
    Territory,
)
from tests.factories import DAY, add_job_type, add_technician, at, request_payload
from truckroll import store
from truckroll.db import session_scope
from truckroll.dispatch.whynot import why_not
from truckroll.rules.config import RulesConfigError, load_file, load_rules
from truckroll.settings import get_settings
from truckroll.travel.provider import get_travel_provider

TRAVEL = GreatCircleTravel(detour_factor=1.0, speed_kmh=60.0)
RULES = DispatchSettings()
IN_WEST = Location(32.8, -96.9)
IN_EAST = Location(32.8, -96.6)
CHI = "America/Chicago"


def ring(lon1: float, lat1: float, lon2: float, lat2: float) -> list[list[float]]:
    return [[lon1, lat1], [lon2, lat1], [lon2, lat2], [lon1, lat2], [lon1, lat1]]


def config(**extra) -> dict:  # type: ignore[no-untyped-def]
    base = {
        "territories": [
            {"name": "Region", "timezone": "America/Chicago", "polygon": ring(-97.0, 32.0, -96.0, 33.5)},
            {"name": "West", "parent": "Region", "timezone": CHI, "polygon": ring(-97.0, 32.5, -96.8, 33.0)},
            {"name": "East", "parent": "Region", "timezone": CHI, "polygon": ring(-96.8, 32.5, -96.5, 33.0)},
        ],
        "memberships": [
            {"technician": "Wes", "territory": "West", "kind": "primary", "from": "2029-01-01"},
            {"technician": "Wes", "territory": "East", "kind": "secondary", "from": "2029-01-01"},
            {"technician": "Eve", "territory": "East", "kind": "primary", "from": "2029-01-01"},
        ],
        "policies": {"scheduling": [{"boundaries": {"weekdays": "hard", "weekends": "soft"}}]},
    }
    base.update(extra)
    return base


@pytest.fixture
def company(db):  # type: ignore[no-untyped-def]
    """Wes lives in West (primary West, secondary East); Eve lives far north in East's corner (primary East)."""
    with session_scope() as s:
        add_job_type(s)
        add_technician(s, "Wes", home=IN_WEST)
        add_technician(s, "Eve", home=Location(32.99, -96.55))
    return db


def _new_request(location: Location, **kw) -> int:  # type: ignore[no-untyped-def]
    with session_scope() as s:
        row, _ = store.create_request(request_payload(lat=location.lat, lon=location.lon, **kw), session=s,
                                      horizon_days=get_settings().planning_horizon_days,
                                      now=at(0) - timedelta(days=1))
        assert row.id is not None
        return row.id


def _decide(rid: int):  # type: ignore[no-untyped-def]
    with session_scope() as s:
        job = store.requirements_of(rid, session=s, tz=get_settings().company_timezone)
        start, end = store.job_horizon(job)
        days = store.technician_days(session=s, start=start, end=end, tz=get_settings().company_timezone,
                                     live=get_travel_provider(get_settings()))
        return job, decide(job, days, TRAVEL, RULES)


def test_yaml_file_with_geojson_import_loads_the_hierarchy(company, tmp_path: Path):
    """Territories from YAML, East's boundary from a GeoJSON Feature file: parents get level 0, children 1."""
    (tmp_path / "east.geojson").write_text(json.dumps(
        {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon",
                                                           "coordinates": [ring(-96.8, 32.5, -96.5, 33.0)]}}))
    (tmp_path / "rules.yaml").write_text("""
territories:
  - {name: Region, timezone: America/Chicago, polygon: [[-97, 32], [-96, 32], [-96, 33.5], [-97, 33.5], [-97, 32]]}
  - {name: East, parent: Region, timezone: America/Chicago, geojson_file: east.geojson,
     visiting_hours: [{days: [mon], start: "08:00", end: "12:00"}, {days: [wed], start: "13:00", end: "18:00"}]}
memberships:
  - {technician: Eve, territory: East, kind: primary, from: 2029-01-01}
""")
    with session_scope() as s:
        report = load_file(tmp_path / "rules.yaml", session=s, tz=get_settings().company_timezone)
    assert report.counts["territories"] == 2 and report.counts["memberships"] == 1
    with session_scope() as s:
        rows = {t.name: t for t in s.exec(select(Territory)).all()}
    assert rows["Region"].level == 0 and rows["East"].level == 1 and rows["East"].parent_id == rows["Region"].id
    assert rows["East"].visiting_hours == [{"weekday": 0, "start": "08:00", "end": "12:00"},
                                           {"weekday": 2, "start": "13:00", "end": "18:00"}]


def _assert_nothing_written() -> None:
    with session_scope() as s:
        for table in (Territory, TechnicianMembership, SchedulingPolicy, OperatingHours, TechnicianAbsence):
            assert s.exec(select(table)).all() == [], f"{table.__name__} was written"


def test_overlapping_primary_memberships_are_refused_and_nothing_changes(company):
    """Wes primary in West from 2029 (open-ended) and primary in East from 2030: refused, naming both; no
    territory, membership or policy of the document is written."""
    cfg = config()
    cfg["memberships"].append({"technician": "Wes", "territory": "East", "kind": "primary", "from": "2030-01-01"})
    with pytest.raises(RulesConfigError) as exc, session_scope() as s:
        load_rules(cfg, session=s, tz=get_settings().company_timezone)
    assert any("overlapping primary memberships: West from 2029-01-01 until open-ended and East from 2030-01-01"
               in e for e in exc.value.errors)
    _assert_nothing_written()


def test_overlap_with_a_stored_primary_is_refused(company):
    """A second document whose primary overlaps one already stored is refused too."""
    with session_scope() as s:
        load_rules(config(), session=s, tz=get_settings().company_timezone)
    with pytest.raises(RulesConfigError, match="overlapping primary"), session_scope() as s:
        load_rules({"memberships": [{"technician": "Eve", "territory": "West", "from": "2029-06-01"}]}, session=s,
                   tz=get_settings().company_timezone)


def test_open_polygon_bad_relocation_unknown_names_and_bad_timezone_are_each_named(company):
    """Every error is reported at once, naming the item; nothing is written."""
    cfg = config()
    cfg["territories"][1]["polygon"] = ring(-97.0, 32.5, -96.8, 33.0)[:-1]
    cfg["territories"][2]["timezone"] = "America/Dallas"
    cfg["memberships"] += [
        {"technician": "Eve", "territory": "West", "kind": "relocation", "from": "2030-01-10", "until": "2030-01-05"},
        {"technician": "Zed", "territory": "West", "kind": "secondary"},
        {"technician": "Eve", "territory": "Nowhere", "kind": "secondary"},
    ]
    with pytest.raises(RulesConfigError) as exc, session_scope() as s:
        load_rules(cfg, session=s, tz=get_settings().company_timezone)
    errors = "\n".join(exc.value.errors)
    assert "territories[1] (West): West: polygon 0 ring 0: the polygon does not close" in errors
    assert "territories[2] (East): East: unknown time zone 'America/Dallas'" in errors
    assert "relocation membership ends (2030-01-05) before it starts (2030-01-10)" in errors
    assert "unknown technician 'Zed'" in errors
    assert "unknown territory 'Nowhere'" in errors
    _assert_nothing_written()


def test_request_territory_and_hard_boundary_on_a_weekday(company):
    """An East request on Monday (weekdays hard): its territory is East with path East, Region; Wes (secondary
    East) is refused 'outside territory' although he is much closer; Eve takes it, boundary 'hard'."""
    with session_scope() as s:
        load_rules(config(), session=s, tz=get_settings().company_timezone)
    rid = _new_request(IN_EAST)
    job, d = _decide(rid)
    assert job.rules is not None and job.rules.territory_name == "East" and job.rules.boundary == "hard"
    assert d.chosen is not None and d.chosen.name == "Eve" and d.boundary == "hard"
    wes = next(c for c in d.candidates if c.name == "Wes")
    assert wes.reasons[0].startswith("outside territory: East is only a secondary territory")


def test_soft_boundary_on_the_weekend_falls_back_to_the_secondary(company):
    """Saturday (weekends soft), Eve not working: Wes takes the East request through his secondary ('soft')."""
    sat = DAY + timedelta(days=5)
    with session_scope() as s:
        load_rules(config(), session=s, tz=get_settings().company_timezone)
        s.add(Shift(technician_id=1, start=at(8, day=sat), end=at(17, day=sat)))
    rid = _new_request(IN_EAST, time_windows=[{"start": at(8, day=sat).isoformat(),
                                               "end": at(12, day=sat).isoformat()}])
    job, d = _decide(rid)
    assert job.rules is not None and job.rules.boundary == "soft"
    assert d.chosen is not None and d.chosen.name == "Wes" and d.boundary == "soft"


def test_weekend_on_call_covers_every_territory_for_emergencies_only(company):
    """Saturday: Wes has no membership of East at all, but an on-call shift covering every territory with
    max priority 2: he takes a priority-1 East job and is refused a priority-5 one."""
    sat = DAY + timedelta(days=5)
    cfg = config(shifts=[{"technician": "Wes", "start": at(0, day=sat).isoformat(),
                          "end": at(23, 59, day=sat).isoformat(), "kind": "on_call", "max_priority": 2,
                          "all_territories": True}])
    cfg["memberships"] = [m for m in cfg["memberships"] if not (m["technician"] == "Wes" and m["kind"] == "secondary")]
    with session_scope() as s:
        load_rules(cfg, session=s, tz=get_settings().company_timezone)
    windows = [{"start": at(8, day=sat).isoformat(), "end": at(12, day=sat).isoformat()}]
    _, d = _decide(_new_request(IN_EAST, priority=1, time_windows=windows))
    assert d.chosen is not None and d.chosen.name == "Wes"
    _, d = _decide(_new_request(IN_EAST, priority=5, time_windows=windows))
    assert d.chosen is None
    assert any("on-call shift takes only priority 2" in r for r in d.why_not()[1])


def test_operating_hours_merge_with_a_shift_and_absences_are_subtracted(company):
    """Eve: weekly Monday 06:00-10:00 plus her 08:00-17:00 shift merge into one 06:00-17:00 block; an absence
    12:00-13:00 leaves 06:00-12:00 and 13:00-17:00 available."""
    with session_scope() as s:
        load_rules(config(operating_hours=[{"technician": "Eve", "days": ["mon"], "start": "06:00", "end": "10:00"}],
                          absences=[{"technician": "Eve", "start": at(12).isoformat(), "end": at(13).isoformat(),
                                     "reason": "dentist"}]), session=s, tz=get_settings().company_timezone)
        days = store.technician_days(session=s, live=get_travel_provider(get_settings()),
                                     tz=get_settings().company_timezone, start=at(0), end=at(23), technician_ids=[2])
    assert [(d.shift_start, d.shift_end) for d in days] == [(at(6), at(17))]
    assert [(w.start, w.end) for w in days[0].available or []] == [(at(6), at(12)), (at(13), at(17))]


def test_why_not_explains_in_a_dispatchers_words(company):
    """Why not Wes for an East request on Monday: outside territory; why not Eve when she is absent all day:
    'not available: absent 2030-01-07 (sick)'."""
    with session_scope() as s:
        load_rules(config(absences=[{"technician": "Eve", "start": at(0).isoformat(),
                                     "end": at(23, 59).isoformat(), "reason": "sick"}]),
                   session=s, tz=get_settings().company_timezone)
    rid = _new_request(IN_EAST)
    with session_scope() as s:
        wes = why_not(rid, 1, session=s, travel=TRAVEL, rules=RULES, tz=get_settings().company_timezone)
        eve = why_not(rid, 2, session=s, travel=TRAVEL, rules=RULES, tz=get_settings().company_timezone)
    assert not wes["eligible"] and wes["territory"] == "East" and wes["boundary_mode"] == "hard"
    assert wes["reasons"][0].startswith("outside territory")
    assert eve["reasons"] == ["not available: absent 2030-01-07 (sick)"]


def test_expired_certification_is_the_reason(company):
    """A gas job: a technician whose gas permit expired the day before is refused with the date."""
    with session_scope() as s:
        add_job_type(s, "water heater repair", certs=["gas"])
        add_technician(s, "Gus", home=IN_EAST, certs={"gas": (DAY - timedelta(days=1)).isoformat()})
    rid = _new_request(IN_EAST, job_type="water heater repair")
    with session_scope() as s:
        gus = why_not(rid, 3, session=s, travel=TRAVEL, rules=RULES, tz=get_settings().company_timezone)
    assert gus["reasons"] == ["no gas certification (expired 2030-01-06)"]


def test_visiting_hours_and_customer_closed_hours_come_with_the_request(company):
    """East visited only Monday 08:00-10:00: a request with an 08:00-12:00 window starts by 09:00 (60 minutes
    must fit); the customer closed 08:00-08:30 moves the earliest start to 08:30."""
    from models.territory_tables import CustomerClosedHours

    cfg = config()
    cfg["territories"][2]["visiting_hours"] = [{"days": ["mon"], "start": "08:00", "end": "10:00"}]
    with session_scope() as s:
        load_rules(cfg, session=s, tz=get_settings().company_timezone)
    rid = _new_request(IN_EAST)
    with session_scope() as s:
        s.add(CustomerClosedHours(request_id=rid, weekday=0, start="08:00", end="08:30"))
    job, d = _decide(rid)
    from engine.rules.availability import effective_windows

    assert [(w.start, w.end) for w in effective_windows(job)] == [(at(8, 30), at(9))]
    assert d.chosen is not None and d.chosen.insertion is not None
    assert at(8, 30) <= d.chosen.insertion.start <= at(9)


def test_membership_effective_dates_follow_the_request_day(company):
    """Eve's East primary ends on 2030-01-06: on Monday the 7th she is outside territory."""
    cfg = config()
    cfg["memberships"][2]["until"] = "2030-01-06"
    with session_scope() as s:
        load_rules(cfg, session=s, tz=get_settings().company_timezone)
    rid = _new_request(IN_EAST)
    with session_scope() as s:
        eve = why_not(rid, 2, session=s, travel=TRAVEL, rules=RULES, tz=get_settings().company_timezone)
    assert eve["reasons"][0].startswith("outside territory")
    assert date(2030, 1, 7) == DAY


def test_demo_company_rules_on_a_weekend(db):
    """The demo's rules load through the loader: four territories, weekday-hard boundaries, and on a Saturday the
    last technician is on call for emergencies in every territory while every third other technician is off."""
    sat = DAY + timedelta(days=5)
    from demo import company as demo
    with session_scope() as s:
        techs = demo.seed_company(s, sat, rules=True)
        days = store.technician_days(session=s, live=get_travel_provider(get_settings()),
                                     tz=get_settings().company_timezone, start=at(0, day=sat), end=at(23, day=sat))
        names = {t.name for t in s.exec(select(Territory)).all()}
    assert names == {"North Texas", "Dallas", "Irving", "Denton County rural"}
    on_call = [d for d in days if d.technician_id == techs[-1].id]
    assert len(on_call) == 1 and on_call[0].max_priority == 2
    assert on_call[0].rules is not None and on_call[0].rules.all_territories
    assert len(days) == 1 + sum(1 for i in range(len(techs) - 1) if i % 3 != 2)
