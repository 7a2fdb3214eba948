"""Where a technician may work: territories (polygons in a hierarchy), effective-dated memberships, hard and
soft boundaries and the travel radius from the home base.

Pure functions on the plain types of ``models.rules``. The per-request dispatch, the re-optimisation and
booking all call :func:`allowed` for the same answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.validation import explain_validity

from engine.travel import TravelTimeProvider, haversine_km
from models.domain import Location
from models.rules import JobRules, Membership, TechnicianRules, Territory

Ring = tuple[tuple[float, float], ...]


# ---------------------------------------------------------------- polygons


def polygons_from_geojson(geometry: dict[str, Any], *, name: str = "territory") -> tuple[tuple[Ring, ...], ...]:
    """The polygons of a GeoJSON geometry, Feature or FeatureCollection (Polygon or MultiPolygon).

    Raises
    ------
    ValueError
        Naming the territory: an unsupported type, a ring that does not close, fewer than 4 positions, or a
        self-intersecting (invalid) polygon.
    """
    if geometry.get("type") == "FeatureCollection":
        out: list[tuple[Ring, ...]] = []
        for i, feat in enumerate(geometry.get("features") or []):
            out.extend(polygons_from_geojson(feat, name=f"{name} (feature {i})"))
        if not out:
            raise ValueError(f"{name}: the FeatureCollection holds no polygon")
        return tuple(out)
    if geometry.get("type") == "Feature":
        geometry = geometry.get("geometry") or {}
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    if kind == "Polygon":
        polys = [coords]
    elif kind == "MultiPolygon":
        polys = list(coords or [])
    else:
        raise ValueError(f"{name}: geometry must be a GeoJSON Polygon or MultiPolygon (got {kind!r})")
    result = []
    for p, rings in enumerate(polys or []):
        checked: list[Ring] = []
        for r, ring in enumerate(rings or []):
            where = f"{name}: polygon {p} ring {r}"
            try:
                pts = tuple((float(x[0]), float(x[1])) for x in ring)
            except (TypeError, ValueError, IndexError):
                raise ValueError(f"{where}: positions must be [lon, lat] pairs") from None
            if len(pts) < 4:
                raise ValueError(f"{where}: a ring needs at least 4 positions (got {len(pts)})")
            if pts[0] != pts[-1]:
                raise ValueError(f"{where}: the polygon does not close (first position {list(pts[0])} "
                                 f"differs from the last {list(pts[-1])})")
            for lon, lat in pts:
                if not (-180 <= lon <= 180 and -90 <= lat <= 90):
                    raise ValueError(f"{where}: position [{lon}, {lat}] is not a [lon, lat] on the globe")
            checked.append(pts)
        if not checked:
            raise ValueError(f"{name}: polygon {p} has no ring")
        poly = Polygon(checked[0], checked[1:])
        if not poly.is_valid:
            raise ValueError(f"{name}: polygon {p} is invalid ({explain_validity(poly)})")
        result.append(tuple(checked))
    if not result:
        raise ValueError(f"{name}: no polygon")
    return tuple(result)


def polygons_to_geojson(polygons: Sequence[Sequence[Ring]]) -> dict[str, Any]:
    return {"type": "MultiPolygon", "coordinates": [[[list(pt) for pt in ring] for ring in poly] for poly in polygons]}


@lru_cache(maxsize=512)
def _geometry(polygons: tuple[tuple[Ring, ...], ...]) -> MultiPolygon:
    return MultiPolygon([(poly[0], list(poly[1:])) for poly in polygons])


def contains(territory: Territory, location: Location) -> bool:
    """Whether the territory's polygon contains the point (the boundary counts as inside)."""
    return bool(_geometry(territory.polygons).covers(Point(location.lon, location.lat)))


def area(territory: Territory) -> float:
    return float(_geometry(territory.polygons).area)


def check_timezone(tz: str, *, name: str = "territory") -> str:
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name}: unknown time zone {tz!r}") from None
    return tz


def territory_of(location: Location, territories: Iterable[Territory]) -> Territory | None:
    """The lowest-level territory that contains the location (deepest level; among equals, the smallest).

    Returns None when no territory contains it.
    """
    inside = [t for t in territories if contains(t, location)]
    if not inside:
        return None
    return max(inside, key=lambda t: (t.level, -area(t), -t.id))


def ancestry(territory_id: int, territories: Iterable[Territory]) -> tuple[int, ...]:
    """The territory and its parents up to the top, lowest first."""
    by_id = {t.id: t for t in territories}
    path: list[int] = []
    current: int | None = territory_id
    while current is not None and current not in path:
        path.append(current)
        parent = by_id.get(current)
        current = parent.parent_id if parent else None
    return tuple(path)


def job_rules_for(location: Location, territories: Sequence[Territory], *, boundary: str = "soft",
                  closed_hours: Sequence[Any] = ()) -> JobRules:
    """The job's territory, its ancestors, its time zone and its visiting hours (the nearest territory on the
    path that has visiting hours sets them)."""
    t = territory_of(location, territories)
    if t is None:
        return JobRules(boundary=boundary, closed_hours=tuple(closed_hours))
    path = ancestry(t.id, territories)
    by_id = {x.id: x for x in territories}
    visiting = next((by_id[i].visiting_hours for i in path if i in by_id and by_id[i].visiting_hours), ())
    return JobRules(territory_id=t.id, territory_name=t.name, territory_path=path, timezone=t.timezone,
                    boundary=boundary, visiting_hours=visiting, closed_hours=tuple(closed_hours))


# ---------------------------------------------------------------- memberships and boundaries


@dataclass(frozen=True, slots=True)
class Boundaries:
    """The territories a technician may work in on one date."""

    hard: tuple[Membership, ...]  # the relocation if one is active, else the primary
    soft: tuple[Membership, ...]  # hard plus the secondaries

    def hard_ids(self) -> set[int]:
        return {m.territory_id for m in self.hard}

    def soft_ids(self) -> set[int]:
        return {m.territory_id for m in self.soft}


def boundaries_on(memberships: Iterable[Membership], on_date: date) -> Boundaries:
    """Resolve the memberships effective on ``on_date``: a relocation replaces the primary for its dates;
    secondaries stay."""
    active = [m for m in memberships if m.active_on(on_date)]
    relocations = [m for m in active if m.kind == "relocation"]
    hard = tuple(relocations) if relocations else tuple(m for m in active if m.kind == "primary")
    soft = hard + tuple(m for m in active if m.kind == "secondary")
    return Boundaries(hard, soft)


def _names(ids: Iterable[int], names: dict[int, str]) -> str:
    return ", ".join(sorted(names.get(i, f"#{i}") for i in ids)) or "none"


def territory_boundary(tech: TechnicianRules | None, job: JobRules | None, on_date: date) -> tuple[str, list[str]]:
    """Which boundary lets the technician take the job: ("hard" | "soft" | "", reasons).

    "" with no reasons means no territory rule applies (job outside every territory, technician without
    memberships, or an on-call shift that covers every territory).
    """
    if job is None or job.territory_id is None or tech is None:
        return "", []
    if tech.all_territories:
        return "", []
    if not tech.memberships:
        return "", []
    b = boundaries_on(tech.memberships, on_date)
    path = set(job.territory_path) or {job.territory_id}
    if path & b.hard_ids():
        return "hard", []
    if path & b.soft_ids():
        if job.boundary == "hard":
            return "", [f"outside territory: {job.territory_name} is only a secondary territory and boundaries "
                        f"are hard on {on_date:%A}s (home territory: {_names(b.hard_ids(), tech.territory_names)})"]
        return "soft", []
    return "", [f"outside territory: {job.territory_name} is not one of theirs "
                f"({_names(b.soft_ids(), tech.territory_names)})"]


def radius_limit(tech: TechnicianRules, job: JobRules | None, on_date: date) -> tuple[float | None, float | None]:
    """(km, minutes): the radius of the membership that lets the technician into the job's territory,
    else the technician's own."""
    if job is not None and job.territory_path:
        path = set(job.territory_path)
        b = boundaries_on(tech.memberships, on_date)
        for m in b.soft:
            if m.territory_id in path and (m.max_radius_km is not None or m.max_radius_minutes is not None):
                return m.max_radius_km, m.max_radius_minutes
    return tech.max_radius_km, tech.max_radius_minutes


def relocation_on(memberships: Iterable[Membership], on_date: date) -> Membership | None:
    """The relocation effective on ``on_date``, if any (the one that started last)."""
    active = [m for m in memberships if m.kind == "relocation" and m.active_on(on_date)]
    return max(active, key=lambda m: m.effective_from) if active else None


def home_base(tech: TechnicianRules | None, home: Location, on_date: date) -> Location:
    """Where the technician's day starts and ends on ``on_date``: a relocation's own home base for its dates,
    else ``home``."""
    reloc = relocation_on(tech.memberships, on_date) if tech is not None else None
    return reloc.home if reloc is not None and reloc.home is not None else home


def radius_centre(tech: TechnicianRules, on_date: date) -> Location:
    """The point the travel radius is measured from: a relocation's radius centre (else its home base) for
    its dates, else the technician's home."""
    reloc = relocation_on(tech.memberships, on_date)
    if reloc is not None:
        return reloc.radius_centre or reloc.home or tech.home
    return tech.home


def radius_reasons(tech: TechnicianRules | None, job: JobRules | None, location: Location, on_date: date,
                   travel: TravelTimeProvider | None = None) -> list[str]:
    """"outside the 40 km travel radius (52 km)" when the job lies beyond the radius from the home base
    (a relocation's radius centre for its dates)."""
    if tech is None:
        return []
    km_limit, min_limit = radius_limit(tech, job, on_date)
    if km_limit is None and min_limit is None:
        return []
    centre = radius_centre(tech, on_date)
    reasons = []
    if km_limit is not None:
        km = haversine_km(centre, location)
        if km > km_limit:
            reasons.append(f"outside the {km_limit:g} km travel radius ({km:.0f} km)")
    if min_limit is not None and travel is not None:
        minutes = travel.minutes(centre, location)
        if minutes > min_limit:
            reasons.append(f"outside the {min_limit:g} min travel radius ({minutes:.0f} min)")
    return reasons


def allowed(tech: TechnicianRules | None, job: JobRules | None, on_date: date, *,
            location: Location | None = None, travel: TravelTimeProvider | None = None) -> list[str]:
    """Every territory and radius reason the technician may not take the job on ``on_date``.

    Parameters
    ----------
    tech:
        The technician's memberships, home base and radius (None = no restriction).
    job:
        The job's territory path and the day's boundary mode (None = no restriction).
    on_date:
        The date of the work (memberships are effective-dated).
    location:
        The job's location, for the radius check (skipped without it).
    travel:
        For a radius in minutes (skipped without it).

    Returns
    -------
    list[str]
        Empty when allowed; otherwise reasons a dispatcher reads ("outside territory: ...",
        "outside the 40 km travel radius (52 km)").
    """
    _, reasons = territory_boundary(tech, job, on_date)
    if location is not None:
        reasons += radius_reasons(tech, job, location, on_date, travel)
    return reasons


def overlapping_primaries(memberships: Sequence[Membership]) -> list[tuple[Membership, Membership]]:
    """Pairs of primary memberships of one technician whose dates overlap (a configuration error)."""
    prim = sorted((m for m in memberships if m.kind == "primary"), key=lambda m: (m.technician_id, m.effective_from))
    out = []
    for i, a in enumerate(prim):
        for b in prim[i + 1:]:
            if b.technician_id != a.technician_id:
                continue
            if a.effective_until is None or b.effective_from <= a.effective_until:
                out.append((a, b))
    return out
