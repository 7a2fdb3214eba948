"""The one decision against the database (truckroll.dispatch.decision): why-not reads the full decision, a relocation's
own home base reaches the routes, and the hard-then-soft policy loads from the rules file.

Same map as test_rules_config: West (lon -97.0..-96.8) and East (lon -96.8..-96.5). Monday 2030-01-07.
"""

from __future__ import annotations

from sqlmodel import select

from models import Location
from models.territory_tables import TechnicianMembership
from tests.factories import add_technician, at, north_km
from tests.test_rules_config import IN_EAST, IN_WEST, RULES, TRAVEL, _new_request, company, config  # noqa: F401
from truckroll import store
from truckroll.db import session_scope
from truckroll.dispatch import decision
from truckroll.dispatch.whynot import why_not
from truckroll.rules.config import load_rules
from truckroll.settings import get_settings
from truckroll.travel.provider import get_travel_provider


def test_why_not_names_the_winner_and_the_score_components(company):  # noqa: F811
    """Both Eve and Far-Eve (primary East) could take an East request; Eve is 20 km closer. Why not Far-Eve:
    eligible, not chosen, Eve won by so much, ahead on travel; Eve herself is chosen. The answer is the
    decision's: the winner is whom the decision chooses."""
    with session_scope() as s:
        add_technician(s, "Far", home=north_km(20, IN_EAST))
        load_rules(config(memberships=[{"technician": "Wes", "territory": "West", "from": "2029-01-01"},
                                       {"technician": "Eve", "territory": "East", "from": "2029-01-01"},
                                       {"technician": "Far", "territory": "East", "from": "2029-01-01"}]),
                   session=s, tz=get_settings().company_timezone)
    rid = _new_request(Location(32.97, -96.56))
    with session_scope() as s:
        _, d = decision.decide_request(rid, session=s, travel=TRAVEL, rules=RULES, tz=get_settings().company_timezone)
        eve = why_not(rid, 2, session=s, travel=TRAVEL, rules=RULES, tz=get_settings().company_timezone)
        far = why_not(rid, 3, session=s, travel=TRAVEL, rules=RULES, tz=get_settings().company_timezone)
        wes = why_not(rid, 1, session=s, travel=TRAVEL, rules=RULES, tz=get_settings().company_timezone)
    assert d.chosen is not None and d.chosen.technician_id == 2
    assert eve["chosen"] is True and eve["eligible"] is True and eve["boundary"] == "hard"
    assert far["eligible"] is True and far["chosen"] is False
    assert far["winner"]["technician_id"] == 2 and far["winner"]["name"] == "Eve"
    assert next(iter(far["score_gap"])) == "travel" and far["score_gap"]["travel"] > 0
    assert far["reasons"][0].startswith("Eve won: score ") and "ahead on travel +" in far["reasons"][0]
    assert wes["eligible"] is False and wes["reasons"][0].startswith("outside territory")


def test_a_relocation_with_its_own_home_base_moves_the_start_of_the_day(company):  # noqa: F811
    """Wes (home in West) is relocated to East for 6-8 January with a home base in East: on the 7th his day
    starts there (the route's first leg is from it), and the radius is measured from it."""
    base = north_km(3, IN_EAST)
    with session_scope() as s:
        load_rules(config(memberships=[
            {"technician": "Wes", "territory": "West", "from": "2029-01-01"},
            {"technician": "Wes", "territory": "East", "kind": "relocation", "from": "2030-01-06",
             "until": "2030-01-08", "home": {"lat": base.lat,
                                             "lon": base.lon}, "max_radius_km": 15}]),
                   session=s, tz=get_settings().company_timezone)
    with session_scope() as s:
        days = store.technician_days(session=s, live=get_travel_provider(get_settings()),
                                     tz=get_settings().company_timezone, start=at(0), end=at(23), technician_ids=[1])
        row = s.exec(select(TechnicianMembership).where(TechnicianMembership.kind == "relocation")).one()
    assert (row.home_lat, row.home_lon) == (base.lat, base.lon)
    assert [d.home for d in days] == [base]
    rid = _new_request(IN_EAST)
    with session_scope() as s:
        _, d = decision.decide_request(rid, session=s, travel=TRAVEL, rules=RULES, tz=get_settings().company_timezone)
    wes = next(c for c in d.candidates if c.technician_id == 1)
    assert wes.eligible and wes.boundary == "hard"
    # 3 km from the relocation base at 60 km/h: the first leg is about 3 minutes, not the 28 km from home.
    assert wes.insertion is not None and wes.insertion.travel_from_previous_minutes < 5


def test_a_membership_that_is_not_a_relocation_cannot_carry_a_home_base(company):  # noqa: F811
    import pytest

    from truckroll.rules.config import RulesConfigError

    with session_scope() as s, pytest.raises(RulesConfigError, match="only a relocation may carry its own home"):
        load_rules(config(memberships=[{"technician": "Wes", "territory": "West", "home": [32.8, -96.6]}]),
                   session=s, tz=get_settings().company_timezone)


def test_hard_then_soft_loads_from_the_rules_and_relaxes_on_the_day(company):  # noqa: F811
    """Weekdays hard_then_soft: Eve is absent, so nobody inside East can; Wes (secondary East) takes the
    request and the decision records the relaxation."""
    with session_scope() as s:
        load_rules(config(policies={"scheduling": [{"boundaries": {"weekdays": "hard_then_soft"}}]},
                          absences=[{"technician": "Eve", "start": at(0).isoformat(), "end": at(23, 59).isoformat(),
                                     "reason": "sick"}]), session=s, tz=get_settings().company_timezone)
    rid = _new_request(IN_EAST)
    with session_scope() as s:
        loaded, d = decision.decide_request(rid, session=s, travel=TRAVEL, rules=RULES,
                                            tz=get_settings().company_timezone)
    assert loaded.job.rules is not None and loaded.job.rules.boundary == "hard_then_soft"
    assert d.chosen is not None and d.chosen.technician_id == 1 and d.boundary == "soft"
    assert d.relaxation is not None and "East" in d.relaxation


def _imports(path: str) -> set[str]:
    """Every module a file imports, lazy imports inside functions included (``from a import b`` gives a and a.b)."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).resolve().parents[1] / path).read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return out


def test_every_caller_goes_through_the_one_decision_and_dispatching_does_not_import_displacement():
    """The flow's tasks, displacement, manual resolution and why-not import truckroll.dispatch.decision and never the
    engine's evaluate/choose themselves; dispatching no longer imports displacement (the cycle is gone)."""
    engine_steps = {"engine.dispatch.decision.evaluate_candidates", "engine.dispatch.decision.choose",
                    "engine.dispatch.decision.decide"}
    for path in ("tasks/dispatch.py", "truckroll/dispatch/displacement.py", "truckroll/dispatch/manual.py",
                 "truckroll/dispatch/whynot.py",
                 "truckroll/dispatch/commit.py"):
        found = _imports(path)
        assert not found & engine_steps, path
        assert "truckroll.dispatch.decision" in found, path
    assert not {m for m in _imports("truckroll/dispatch/commit.py")
                if "displacement" in m and m.startswith("truckroll")}
