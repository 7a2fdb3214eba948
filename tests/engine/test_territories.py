"""Territories, memberships, hard and soft boundaries, the travel radius, and how the decision relaxes them.

The map: a region (lon -97..-96, lat 32..33.5) holding two city areas side by side, West (lon -97..-96.8) and
East (lon -96.8..-96.5), both lat 32.5..33.0. Travel is great-circle at 60 km/h (1 km = 1 minute).
"""

from __future__ import annotations

from datetime import date

import pytest

from engine.config import DispatchSettings
from engine.dispatch.decision import decide
from engine.dispatch.eligibility import ineligibility_reasons
from engine.rules.territories import (
    allowed,
    boundaries_on,
    job_rules_for,
    overlapping_primaries,
    polygons_from_geojson,
    territory_boundary,
    territory_of,
)
from engine.travel import GreatCircleTravel
from models.domain import Location
from models.rules import JobRules, Membership, TechnicianRules, Territory
from tests.factories import DAY, job, north_km, tech_day

TRAVEL = GreatCircleTravel(detour_factor=1.0, speed_kmh=60.0)
RULES = DispatchSettings()


def box(lon1: float, lat1: float, lon2: float, lat2: float) -> tuple:
    ring = ((lon1, lat1), (lon2, lat1), (lon2, lat2), (lon1, lat2), (lon1, lat1))
    return ((ring,),)


REGION = Territory(1, "Region", "America/Chicago", box(-97.0, 32.0, -96.0, 33.5), level=0)
WEST = Territory(2, "West", "America/Chicago", box(-97.0, 32.5, -96.8, 33.0), parent_id=1, level=1)
EAST = Territory(3, "East", "America/Chicago", box(-96.8, 32.5, -96.5, 33.0), parent_id=1, level=1)
ALL = [REGION, WEST, EAST]
NAMES = {t.id: t.name for t in ALL}
IN_WEST = Location(32.8, -96.9)
IN_EAST = Location(32.8, -96.6)
NORTH_RURAL = Location(33.3, -96.6)  # inside the region, in neither city area


def member(territory: int, kind: str = "primary", start: date = date(2029, 1, 1), until: date | None = None,
           tech: int = 1, radius_km: float | None = None) -> Membership:
    return Membership(tech, territory, kind, start, until, max_radius_km=radius_km)


def rules_of(*memberships: Membership, home: Location = IN_WEST, radius_km: float | None = None,
             all_territories: bool = False) -> TechnicianRules:
    return TechnicianRules(1, home, tuple(memberships), max_radius_km=radius_km, all_territories=all_territories,
                           territory_names=NAMES)


def test_request_belongs_to_the_lowest_level_containing_territory():
    """A point in a city area belongs to the city area, not the region; a point only in the region to the
    region; a point outside everything to nothing."""
    assert territory_of(IN_WEST, ALL) == WEST
    assert territory_of(IN_EAST, ALL) == EAST
    assert territory_of(NORTH_RURAL, ALL) == REGION
    assert territory_of(Location(40.0, -90.0), ALL) is None
    rules = job_rules_for(IN_EAST, ALL)
    assert rules.territory_path == (3, 1)
    assert rules.timezone == "America/Chicago"


def test_geojson_polygon_must_close_and_be_valid():
    """An open ring and a self-intersecting 'bow tie' are refused, naming the territory; a closed one loads."""
    closed = {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]}
    assert polygons_from_geojson(closed)[0][0][0] == (0.0, 0.0)
    with pytest.raises(ValueError, match="Lakes: polygon 0 ring 0: the polygon does not close"):
        polygons_from_geojson({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, name="Lakes")
    with pytest.raises(ValueError, match="invalid"):
        polygons_from_geojson({"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]})
    feature = {"type": "Feature", "geometry": closed, "properties": {}}
    assert len(polygons_from_geojson({"type": "FeatureCollection", "features": [feature, feature]})) == 2


def test_relocation_replaces_the_primary_for_its_dates_only():
    """Primary West, relocated to East for 2030-01-06..2030-01-08: on the 7th the hard boundary is East; on the
    9th it is West again. Secondaries stay."""
    ms = [member(2), member(3, "relocation", date(2030, 1, 6), date(2030, 1, 8)), member(1, "secondary")]
    assert boundaries_on(ms, DAY).hard_ids() == {3}
    assert boundaries_on(ms, DAY).soft_ids() == {3, 1}
    assert boundaries_on(ms, date(2030, 1, 9)).hard_ids() == {2}


def test_memberships_are_effective_dated():
    """A primary that ends on the 6th does not count on the 7th; one that starts on the 8th not yet."""
    ms = [member(2, until=date(2030, 1, 6)), member(3, start=date(2030, 1, 8))]
    assert boundaries_on(ms, DAY).hard_ids() == set()
    assert allowed(rules_of(*ms), job_rules_for(IN_WEST, ALL), DAY)[0].startswith("outside territory")


def test_hard_boundary_refuses_a_secondary_territory_soft_allows_it():
    """Primary West, secondary East: an East job is refused under hard boundaries and allowed (as 'soft')
    under soft ones; a West job is 'hard' either way."""
    tech = rules_of(member(2), member(3, "secondary"))
    east_hard = job_rules_for(IN_EAST, ALL, boundary="hard")
    boundary, reasons = territory_boundary(tech, east_hard, DAY)
    assert boundary == "" and reasons[0].startswith("outside territory: East is only a secondary territory")
    assert territory_boundary(tech, job_rules_for(IN_EAST, ALL, boundary="soft"), DAY) == ("soft", [])
    assert territory_boundary(tech, job_rules_for(IN_WEST, ALL, boundary="hard"), DAY) == ("hard", [])


def test_membership_of_a_parent_covers_its_children():
    """A technician whose primary is the region may take work in either city area (hard)."""
    tech = rules_of(member(1))
    assert territory_boundary(tech, job_rules_for(IN_EAST, ALL, boundary="hard"), DAY) == ("hard", [])


def test_on_call_shift_covering_all_territories_ignores_memberships():
    """An on-call shift that covers every territory may take an East job with only a West membership."""
    tech = rules_of(member(2), all_territories=True)
    assert allowed(tech, job_rules_for(IN_EAST, ALL, boundary="hard"), DAY) == []


def test_radius_by_distance_per_technician_and_per_membership():
    """Home in East, job 52 km north of it (in the region, outside both city areas). A 40 km technician radius
    refuses it; a 60 km membership radius on the job's territory overrides the technician's; without any radius
    it is allowed."""
    home = Location(32.6, -96.6)
    far = north_km(52, home)
    region = job_rules_for(far, ALL)
    assert region.territory_id == 1
    assert allowed(rules_of(member(1), home=home, radius_km=40), region, DAY, location=far) == [
        "outside the 40 km travel radius (52 km)"]
    assert allowed(rules_of(member(1, radius_km=60), home=home, radius_km=40), region, DAY, location=far) == []
    assert allowed(rules_of(member(1), home=home), region, DAY, location=far) == []


def test_radius_in_minutes_uses_the_travel_provider():
    """A 30-minute radius at 60 km/h refuses a job 45 km away (45 minutes)."""
    home = Location(32.5, -96.7)
    tech = TechnicianRules(1, home, (), max_radius_minutes=30)
    reasons = allowed(tech, JobRules(), DAY, location=north_km(45, home), travel=TRAVEL)
    assert reasons == ["outside the 30 min travel radius (45 min)"]


def test_overlapping_primaries_are_found():
    """Two primaries of one technician overlapping in January are reported; another technician's is not."""
    a = member(2, start=date(2030, 1, 1), until=date(2030, 1, 31))
    b = member(3, start=date(2030, 1, 20))
    c = member(3, start=date(2030, 1, 20), tech=2)
    assert overlapping_primaries([a, b, c]) == [(a, b)]
    assert overlapping_primaries([a, member(3, start=date(2030, 2, 1))]) == []


def test_relocation_must_end_after_it_starts():
    """A relocation ending before it starts is refused at construction."""
    with pytest.raises(ValueError, match="ends .* before it starts"):
        member(3, "relocation", date(2030, 1, 8), date(2030, 1, 6))


def test_eligibility_names_outside_territory():
    """A West-only technician is ineligible for an East job, with the reason 'outside territory'."""
    day = tech_day(1, home=IN_WEST)
    day.rules = rules_of(member(2))
    j = job(location=IN_EAST)
    j.rules = job_rules_for(IN_EAST, ALL, boundary="soft")
    assert any(r.startswith("outside territory: East is not one of theirs") for r in ineligibility_reasons(day, j))


def _two_techs(boundary: str, west_busy: bool = False):  # type: ignore[no-untyped-def]
    """Tech 1: primary East, 30 km from the job. Tech 2: primary West, secondary East, 5 km from the job."""
    j = job(location=IN_EAST)
    j.rules = job_rules_for(IN_EAST, ALL, boundary=boundary)
    east = tech_day(1, home=north_km(30, IN_EAST))
    east.rules = TechnicianRules(1, east.home, (member(3, tech=1),), territory_names=NAMES)
    west = tech_day(2, home=north_km(5, IN_EAST))
    west.rules = TechnicianRules(2, west.home, (member(2, tech=2), member(3, "secondary", tech=2)),
                                 territory_names=NAMES)
    if west_busy:
        east.active = False
    return j, [east, west]


def test_relaxation_tries_hard_boundaries_first_even_if_a_soft_candidate_is_closer():
    """Soft mode: the East primary technician (30 km) is chosen over the closer West one with East as a
    secondary; the decision records 'hard'."""
    j, days = _two_techs("soft")
    d = decide(j, days, TRAVEL, RULES)
    assert d.chosen is not None and d.chosen.technician_id == 1
    assert d.boundary == "hard"
    assert "only a secondary territory" in d.why_not()[2][0]


def test_relaxation_falls_back_to_soft_then_escalates_under_hard():
    """Nobody inside the hard boundary can take it (the East technician is inactive): soft mode places it with
    the secondary member and records 'soft'; hard mode escalates."""
    j, days = _two_techs("soft", west_busy=True)
    d = decide(j, days, TRAVEL, RULES)
    assert d.chosen is not None and d.chosen.technician_id == 2 and d.boundary == "soft"
    j, days = _two_techs("hard", west_busy=True)
    d = decide(j, days, TRAVEL, RULES)
    assert d.chosen is None and d.escalation_reason == "no qualified technician"


def test_no_rules_means_no_restriction():
    """Without territory data the old behaviour holds: no boundary recorded, nobody refused for territory."""
    d = decide(job(), [tech_day(1)], TRAVEL, RULES)
    assert d.chosen is not None and d.boundary is None
