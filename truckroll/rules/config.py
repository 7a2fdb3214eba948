"""Load the dispatch rules from YAML or JSON: territories (GeoJSON), memberships, shifts, operating hours,
absences, scheduling and travel policies, visiting hours. The format is in docs/rules.md.

Everything is validated first, against the file and the database together (overlapping primary memberships,
polygons that do not close, relocations that end before they start, unknown technicians or territories, bad
time zones); any error refuses the whole document with every error named, and nothing is written. Then it is
written in the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from sqlmodel import Session, col, select

from engine.rules.territories import check_timezone, overlapping_primaries, polygons_from_geojson, polygons_to_geojson
from models import Shift, Technician
from models.domain import Location
from models.rules import WEEKDAYS, Membership, SchedulingPolicy, TravelPolicy, WeeklyHours
from models.schemas import EARLIEST, LATEST
from models.territory_tables import (
    OperatingHours,
    ShiftScope,
    TechnicianAbsence,
    TechnicianMembership,
    Territory,
    TravelPolicyRecord,
)
from models.territory_tables import SchedulingPolicy as SchedulingPolicyRow
from truckroll.rules.store import clock, parse_clock

SECTIONS = ("territories", "memberships", "shifts", "operating_hours", "absences", "policies")
_HOURS_KEYS = {"days", "day", "start", "end"}
# The keys each item may have: any other key is refused with its path (a misspelt key is never ignored).
ITEM_KEYS: dict[str, set[str]] = {
    "territories": {"name", "timezone", "geojson", "geojson_file", "polygon", "visiting_hours", "parent"},
    "memberships": {"technician", "territory", "kind", "from", "effective_from", "until", "effective_until",
                    "max_radius_km", "max_radius_minutes", "home", "radius_centre"},
    "shifts": {"technician", "start", "end", "kind", "max_priority", "all_territories"},
    "operating_hours": {"technician", "hours"} | _HOURS_KEYS,
    "absences": {"technician", "start", "end", "reason"},
    "policies.scheduling": {"territory", "boundaries"},
    "policies.travel": {"technician", "start_at", "end_at", "depot", "outbound", "outbound_own_minutes", "inbound",
                        "inbound_own_minutes", "max_radius_km", "max_radius_minutes"},
}


def unknown_keys(data: Mapping[str, Any]) -> list[str]:
    """Every key the format does not know, with its path (``memberships[0].max_radius_kms``)."""
    errors: list[str] = []

    def check(path: str, item: Any, allowed: set[str]) -> None:
        if not isinstance(item, dict):
            return
        for key in item:
            if key not in allowed:
                errors.append(f"{path}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})")
        for sub in ("hours", "visiting_hours"):
            if sub in allowed and isinstance(item.get(sub), list):
                for j, h in enumerate(item[sub]):
                    check(f"{path}.{sub}[{j}]", h, _HOURS_KEYS)

    for section in SECTIONS:
        value = data.get(section)
        if section == "policies":
            if isinstance(value, dict):
                for key in value:
                    if key not in ("scheduling", "travel"):
                        errors.append(f"policies.{key}: unknown key (allowed: scheduling, travel)")
                for sub in ("scheduling", "travel"):
                    for i, item in enumerate(value.get(sub) or []):
                        check(f"policies.{sub}[{i}]", item, ITEM_KEYS[f"policies.{sub}"])
            continue
        for i, item in enumerate(value or [] if isinstance(value, list) else []):
            check(f"{section}[{i}]", item, ITEM_KEYS[section])
    return errors
DAY_GROUPS = {"weekdays": WEEKDAYS[:5], "weekends": WEEKDAYS[5:], "all": WEEKDAYS}


class RulesConfigError(ValueError):
    """The configuration was refused; ``errors`` names every failing item. Nothing was written."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("refused, nothing changed:\n" + "\n".join(f"  - {e}" for e in errors))


@dataclass
class LoadReport:
    """How many of each item were written."""

    counts: dict[str, int] = field(default_factory=dict)
    # Of ``counts``: how many items were added and how many stored ones were updated (shifts, absences,
    # memberships), and the ids of the stored shift and absence rows the document states (for prune).
    created: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)
    kept: dict[str, set[int]] = field(default_factory=dict)


def read_file(path: Path) -> dict[str, Any]:
    """Parse a YAML (.yaml/.yml) or JSON file into the configuration document.

    Raises
    ------
    RulesConfigError
        When the file is missing or does not parse.
    """
    if not path.exists():
        raise RulesConfigError([f"no such file: {path}"])
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise RulesConfigError([f"{path} does not parse: {exc}"]) from None
    if not isinstance(data, dict):
        raise RulesConfigError([f"{path}: the document must be a mapping with {', '.join(SECTIONS)}"])
    data.setdefault("_base_dir", str(path.parent))
    return data


# ---------------------------------------------------------------- parsing helpers (raise ValueError)


def _days(item: Mapping[str, Any]) -> list[int]:
    raw = item.get("days", item.get("day"))
    if raw is None:
        raise ValueError("give days (e.g. [mon, wed] or weekdays)")
    names: list[str] = []
    for d in raw if isinstance(raw, list) else [raw]:
        d = str(d).lower()[:3] if str(d).lower() not in DAY_GROUPS else str(d).lower()
        names += list(DAY_GROUPS.get(d, [d]))
    out = []
    for n in names:
        if n not in WEEKDAYS:
            raise ValueError(f"unknown day {n!r} (use mon..sun, weekdays, weekends)")
        out.append(WEEKDAYS.index(n))
    return out


def weekly_hours(items: Any) -> list[WeeklyHours]:
    """[{days: [mon, wed], start: "08:00", end: "12:00"}] -> WeeklyHours per day."""
    out = []
    for item in items or []:
        for wd in _days(item):
            try:
                start, end = parse_clock(str(item["start"])), parse_clock(str(item["end"]))
            except KeyError as exc:
                raise ValueError(f"hours need a {exc.args[0]}") from None
            out.append(WeeklyHours(wd, start, end))
    return out


def _hours_json(hours: list[WeeklyHours]) -> list[dict[str, Any]]:
    return [{"weekday": h.weekday, "start": clock(h.start), "end": "24:00" if h.end.hour == h.end.minute == 0
             else clock(h.end)} for h in hours]


def _date(value: Any, name: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        day = date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{name} must be a date YYYY-MM-DD (got {value!r})") from None
    if not EARLIEST.date() <= day < LATEST.date():
        raise ValueError(f"{name} must lie between {EARLIEST.year} and {LATEST.year} (got {value!r})")
    return day


def _datetime(value: Any, name: str) -> datetime:
    dt = value if isinstance(value, datetime) else None
    if dt is None:
        try:
            dt = datetime.fromisoformat(str(value))
        except ValueError:
            raise ValueError(f"{name} must be a date-time with offset (got {value!r})") from None
    if dt.tzinfo is None:
        raise ValueError(f"{name} must include a timezone offset, e.g. 2030-01-05T07:00:00-06:00")
    if not EARLIEST <= dt < LATEST:
        raise ValueError(f"{name} must lie between {EARLIEST.year} and {LATEST.year} (got {value!r})")
    return dt


def _point(value: Any, name: str) -> Location | None:
    """{lat: .., lon: ..} or [lat, lon] -> a Location (None when absent)."""
    if value is None:
        return None
    try:
        if isinstance(value, Mapping):
            return Location(float(value["lat"]), float(value["lon"]))
        lat, lon = value
        return Location(float(lat), float(lon))
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be {{lat: .., lon: ..}} or [lat, lon] ({exc})") from None


def _boundaries(value: Any) -> tuple[str, ...]:
    """{weekdays: hard, weekends: soft} or {mon: hard, ...} or a list of 7 -> 7 modes."""
    if isinstance(value, str):
        value = {"all": value}
    if isinstance(value, list):
        modes = [str(v) for v in value]
    else:
        modes = ["soft"] * 7
        for key in sorted(value or {}, key=lambda k: k not in DAY_GROUPS):  # groups first, single days override
            mode = str(value[key])
            for wd in _days({"days": key}):
                modes[wd] = mode
    SchedulingPolicy(tuple(modes))  # type: ignore[arg-type]  # validates (raises ValueError)
    return tuple(modes)


# ---------------------------------------------------------------- load


class _Loader:
    def __init__(self, data: Mapping[str, Any], session: Session) -> None:
        self.data = data
        self.session = session
        self.errors: list[str] = []
        self.base = Path(str(data.get("_base_dir", ".")))
        techs = session.exec(select(Technician)).all()
        self.tech_by_name = {t.name: t.id for t in techs}
        self.tech_ids = {t.id for t in techs}
        self.terr_rows = {t.name: t for t in session.exec(select(Territory)).all()}
        self.new_territories: dict[str, dict[str, Any]] = {}
        # Named in the document (even if refused): references to them are not errors of their own.
        self.declared = {str(i.get("name")) for i in data.get("territories") or [] if isinstance(i, dict)}
        self.writes: list[Any] = []

    def fail(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")

    def technician(self, ref: Any) -> int:
        if isinstance(ref, int) and not isinstance(ref, bool):
            if ref in self.tech_ids:
                return ref
            raise ValueError(f"unknown technician {ref}")
        if ref in self.tech_by_name:
            return int(self.tech_by_name[ref])  # type: ignore[arg-type]
        raise ValueError(f"unknown technician {ref!r}")

    def territory_known(self, name: Any) -> None:
        if name not in self.terr_rows and name not in self.declared:
            raise ValueError(f"unknown territory {name!r}")

    # ---- sections

    def territories(self) -> None:
        items = self.data.get("territories") or []
        names = [i.get("name") for i in items if isinstance(i, dict)]
        for i, item in enumerate(items):
            where = f"territories[{i}] ({item.get('name', '?')})" if isinstance(item, dict) else f"territories[{i}]"
            try:
                if not isinstance(item, dict) or not item.get("name"):
                    raise ValueError("a territory needs a name")
                name = str(item["name"])
                if names.count(name) > 1:
                    raise ValueError(f"territory {name!r} is defined twice")
                tz = check_timezone(str(item.get("timezone", "")), name=name) if item.get("timezone") else None
                geometry = item.get("geojson")
                if item.get("geojson_file"):
                    path = self.base / str(item["geojson_file"])
                    if not path.exists():
                        raise ValueError(f"no such GeoJSON file: {path}")
                    geometry = json.loads(path.read_text())
                if geometry is None and item.get("polygon") is not None:
                    geometry = {"type": "Polygon", "coordinates": [item["polygon"]]}
                polygons = polygons_from_geojson(geometry, name=name) if geometry is not None else None
                existing = self.terr_rows.get(name)
                if polygons is None and existing is None:
                    raise ValueError("a new territory needs a boundary (geojson, geojson_file or polygon)")
                if tz is None and existing is None:
                    raise ValueError("a new territory needs a timezone")
                hours = weekly_hours(item.get("visiting_hours")) if "visiting_hours" in item else None
                parent = item.get("parent")
                if parent is not None and parent not in self.terr_rows and parent not in names:
                    raise ValueError(f"unknown parent territory {parent!r}")
                if parent == name:
                    raise ValueError("a territory cannot be its own parent")
                self.new_territories[name] = {"parent": parent, "timezone": tz, "polygons": polygons,
                                              "visiting_hours": hours}
            except (ValueError, TypeError) as exc:
                self.fail(where, str(exc))
        # a parent chain must end (no cycles)
        for name in self.new_territories:
            seen, cur = [name], self._parent_of(name)
            while cur is not None:
                if cur in seen:
                    self.fail(f"territories ({name})", "the parent chain loops: " + " -> ".join(seen + [cur]))
                    break
                seen.append(cur)
                cur = self._parent_of(cur)

    def _parent_of(self, name: str) -> str | None:
        if name in self.new_territories:
            return self.new_territories[name]["parent"]
        row = self.terr_rows.get(name)
        if row is None or row.parent_id is None:
            return None
        return next((n for n, r in self.terr_rows.items() if r.id == row.parent_id), None)

    def memberships(self) -> list[tuple[Membership, str]]:
        out = []
        for i, item in enumerate(self.data.get("memberships") or []):
            where = f"memberships[{i}] ({item.get('technician', '?')} in {item.get('territory', '?')})"
            try:
                tid = self.technician(item.get("technician"))
                self.territory_known(item.get("territory"))
                m = Membership(technician_id=tid, territory_id=-1, kind=str(item.get("kind", "primary")),
                               effective_from=_date(item.get("from", item.get("effective_from")), "from")
                               or date(2000, 1, 1),
                               effective_until=_date(item.get("until", item.get("effective_until")), "until"),
                               max_radius_km=item.get("max_radius_km"),
                               max_radius_minutes=item.get("max_radius_minutes"),
                               home=_point(item.get("home"), "home"),
                               radius_centre=_point(item.get("radius_centre"), "radius_centre"))
                out.append((m, str(item["territory"])))
            except (ValueError, TypeError) as exc:
                self.fail(where, str(exc))
        # Overlapping primaries, with the memberships already stored for the same technicians. A stored row the
        # document restates (same technician, territory, kind and start) is the same membership, updated in
        # place: it is not compared with itself, so loading a file twice is not refused.
        ids = {m.technician_id for m, _ in out}
        names = {r.id: n for n, r in self.terr_rows.items()}
        restated = {(m.technician_id, terr, m.kind, m.effective_from) for m, terr in out}
        stored = [r for r in self.session.exec(select(TechnicianMembership).where(
            col(TechnicianMembership.technician_id).in_(ids), TechnicianMembership.kind == "primary")).all()
            if (r.technician_id, names.get(r.territory_id), r.kind, r.effective_from) not in restated] \
            if ids else []
        everything = [(m, terr) for m, terr in out] + [
            (Membership(r.technician_id, -1, r.kind, r.effective_from, r.effective_until),
             f"{names.get(r.territory_id, r.territory_id)} (stored)") for r in stored]
        labelled = {id(m): terr for m, terr in everything}
        tech_names = {v: k for k, v in self.tech_by_name.items()}
        for a, b in overlapping_primaries([m for m, _ in everything]):
            self.fail(f"memberships ({tech_names.get(a.technician_id, a.technician_id)})",
                      f"overlapping primary memberships: {labelled[id(a)]} from {a.effective_from} "
                      f"until {a.effective_until or 'open-ended'} and {labelled[id(b)]} from {b.effective_from} "
                      f"until {b.effective_until or 'open-ended'}")
        return out

    def shifts(self) -> list[tuple[Shift, bool]]:
        out: list[tuple[Shift, bool]] = []
        for i, item in enumerate(self.data.get("shifts") or []):
            where = f"shifts[{i}] ({item.get('technician', '?')})"
            try:
                tid = self.technician(item.get("technician"))
                start, end = _datetime(item.get("start"), "start"), _datetime(item.get("end"), "end")
                if end <= start:
                    raise ValueError(f"shift ends ({end.isoformat()}) before it starts ({start.isoformat()})")
                mp = item.get("max_priority")
                if mp is not None and not 1 <= int(mp) <= 10:
                    raise ValueError(f"max_priority must be 1..10 (got {mp})")
                kind = str(item.get("kind", "on_call" if mp is not None else "regular"))
                if kind not in ("regular", "on_call"):
                    raise ValueError(f"kind must be regular or on_call (got {kind!r})")
                if any(o.technician_id == tid and o.start == start and o.end == end for o, _ in out):
                    raise ValueError(f"a second shift from {start.isoformat()} to {end.isoformat()}")
                out.append((Shift(technician_id=tid, start=start, end=end, kind=kind,
                                  max_priority=int(mp) if mp is not None else None),
                            bool(item.get("all_territories", False))))
            except (ValueError, TypeError) as exc:
                self.fail(where, str(exc))
        return out

    def operating_hours(self) -> dict[int, list[WeeklyHours]]:
        out: dict[int, list[WeeklyHours]] = {}
        for i, item in enumerate(self.data.get("operating_hours") or []):
            where = f"operating_hours[{i}] ({item.get('technician', '?')})"
            try:
                tid = self.technician(item.get("technician"))
                out.setdefault(tid, []).extend(weekly_hours(item.get("hours") or [item]))
            except (ValueError, TypeError) as exc:
                self.fail(where, str(exc))
        return out

    def absences(self) -> list[TechnicianAbsence]:
        out: list[TechnicianAbsence] = []
        for i, item in enumerate(self.data.get("absences") or []):
            where = f"absences[{i}] ({item.get('technician', '?')})"
            try:
                tid = self.technician(item.get("technician"))
                start = _datetime(item.get("start"), "start")
                end = _datetime(item.get("end"), "end")
                if end <= start:
                    raise ValueError(f"absence ends ({end.isoformat()}) before it starts ({start.isoformat()})")
                if any(o.technician_id == tid and o.start == start and o.end == end for o in out):
                    raise ValueError(f"a second absence from {start.isoformat()} to {end.isoformat()}")
                out.append(TechnicianAbsence(technician_id=tid, start=start, end=end,
                                             reason=str(item.get("reason", "absent"))))
            except (ValueError, TypeError) as exc:
                self.fail(where, str(exc))
        return out

    def policies(self) -> tuple[list[tuple[str | None, tuple[str, ...]]], list[tuple[int | None, TravelPolicy]]]:
        pol = self.data.get("policies") or {}
        scheduling = []
        seen_sched: set[str | None] = set()
        for i, item in enumerate(pol.get("scheduling") or []):
            where = f"policies.scheduling[{i}] ({item.get('territory') or 'company default'})"
            try:
                terr = item.get("territory")
                if terr is not None:
                    self.territory_known(terr)
                if terr in seen_sched:
                    raise ValueError("a second scheduling policy for the same territory")
                seen_sched.add(terr)
                scheduling.append((terr, _boundaries(item.get("boundaries", "soft"))))
            except (ValueError, TypeError) as exc:
                self.fail(where, str(exc))
        travel = []
        for i, item in enumerate(pol.get("travel") or []):
            where = f"policies.travel[{i}] ({item.get('technician') or 'company default'})"
            try:
                tid = self.technician(item["technician"]) if item.get("technician") is not None else None
                depot = item.get("depot")
                policy = TravelPolicy(
                    start_at=str(item.get("start_at", "home")), end_at=str(item.get("end_at", "home")),
                    depot=Location(float(depot["lat"]), float(depot["lon"])) if depot else None,
                    outbound=str(item.get("outbound", "company")),
                    outbound_own_minutes=float(item.get("outbound_own_minutes", 0)),
                    inbound=str(item.get("inbound", "company")),
                    inbound_own_minutes=float(item.get("inbound_own_minutes", 0)),
                    max_radius_km=item.get("max_radius_km"), max_radius_minutes=item.get("max_radius_minutes"))
                travel.append((tid, policy))
            except (ValueError, TypeError, KeyError) as exc:
                self.fail(where, str(exc))
        return scheduling, travel


def _tally(report: LoadReport, section: str, created: bool) -> None:
    bucket = report.created if created else report.updated
    bucket[section] = bucket.get(section, 0) + 1


def _aware(dt: datetime) -> datetime:
    """Stored date-times may come back naive (SQLite): they are UTC."""
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def _local_day(dt: datetime, tz: ZoneInfo) -> date:
    return _aware(dt).astimezone(tz).date()


def _same_moment(a: datetime, b: datetime) -> bool:
    return _aware(a) == _aware(b)


def _restated(session: Session, model: Any,
              wanted: list[tuple[int, datetime, datetime]], zone: ZoneInfo) -> list[Any | None]:
    """For each dated item of a document (technician, start, end: a shift or an absence), the stored row of
    ``model`` it restates, or None for a new one. Rows are keyed by technician and the local day of their start:
    first a row of the same key with the same times, then the key's other rows in order of start. A stored row
    is restated at most once."""
    stored: dict[tuple[int, date], list[Any]] = {}
    if wanted:
        for r in session.exec(select(model).where(col(model.technician_id).in_({t for t, _, _ in wanted}))
                              .order_by(col(model.start))).all():
            stored.setdefault((r.technician_id, _local_day(r.start, zone)), []).append(r)
    keys = [(t, _local_day(a, zone)) for t, a, _ in wanted]
    times = [(a, b) for _, a, b in wanted]
    out: list[Any | None] = [None] * len(keys)
    used: set[int] = set()
    for i, (key, (a, b)) in enumerate(zip(keys, times, strict=True)):
        for row in stored.get(key, []):
            ra, rb = row.start, row.end
            if id(row) not in used and _same_moment(ra, a) and _same_moment(rb, b):
                out[i] = row
                used.add(id(row))
                break
    for i in sorted(range(len(keys)), key=lambda i: _aware(times[i][0])):  # in order of start, as stored
        key = keys[i]
        if out[i] is None:
            row = next((r for r in stored.get(key, []) if id(r) not in used), None)
            if row is not None:
                out[i] = row
                used.add(id(row))
    return out


def load_rules(data: Mapping[str, Any], *, session: Session, tz: str) -> LoadReport:
    """Validate the whole document, then write it in ``session`` (the caller commits). ``tz`` is the company's time
    zone (the setting ``company_timezone``): dated shifts and absences are matched by their local date in it.

    Territories are matched by name (a known one is updated); a membership is matched by technician,
    territory, kind and start (a restated one is updated: loading the same file twice changes nothing); a dated
    shift by technician and local date, an absence by technician and the local date it starts (restated with
    other times, the stored one is updated); unknown keys are refused with their path;
    a technician's operating hours are replaced by the document's; policies are replaced per territory or
    technician (none = the company default).

    Raises
    ------
    RulesConfigError
        Naming every failing item; nothing has been written.
    """
    unknown = [k for k in data if k not in SECTIONS and not k.startswith("_")]
    loader = _Loader(data, session)
    if unknown:
        loader.errors.append(f"unknown section(s) {', '.join(map(str, unknown))} (use {', '.join(SECTIONS)})")
    loader.errors.extend(unknown_keys(data))
    loader.territories()
    memberships = loader.memberships()
    shifts = loader.shifts()
    hours = loader.operating_hours()
    absences = loader.absences()
    scheduling, travel = loader.policies()
    if loader.errors:
        raise RulesConfigError(loader.errors)

    report = LoadReport()
    # Territories: parents before children.
    rows = dict(loader.terr_rows)
    pending = dict(loader.new_territories)
    territories_changed = 0
    while pending:
        progressed = False
        for name, spec in list(pending.items()):
            parent = spec["parent"]
            if parent is not None and (parent in pending or parent not in rows):
                continue
            row = rows.get(name) or Territory(name=name)
            before = None if row.id is None else (row.timezone, row.geometry, row.visiting_hours, row.parent_id,
                                                  row.level)
            if spec["timezone"]:
                row.timezone = spec["timezone"]
            if spec["polygons"] is not None:
                row.geometry = polygons_to_geojson(spec["polygons"])
            if spec["visiting_hours"] is not None:
                row.visiting_hours = _hours_json(spec["visiting_hours"])
            row.parent_id = rows[parent].id if parent is not None else None
            row.level = rows[parent].level + 1 if parent is not None else 0
            if before != (row.timezone, row.geometry, row.visiting_hours, row.parent_id, row.level):
                session.add(row)
                session.flush()
                territories_changed += 1
                _tally(report, "territories", before is None)
            rows[name] = row
            del pending[name]
            progressed = True
        assert progressed, "territory parents were validated"
    report.counts["territories"] = territories_changed
    changed = 0
    for m, terr in memberships:
        territory_id = rows[terr].id
        assert territory_id is not None, "territories were written above"
        member = session.exec(select(TechnicianMembership).where(
            TechnicianMembership.technician_id == m.technician_id, TechnicianMembership.territory_id == territory_id,
            TechnicianMembership.kind == m.kind, TechnicianMembership.effective_from == m.effective_from)).first()
        values = dict(effective_until=m.effective_until, max_radius_km=m.max_radius_km,
                      max_radius_minutes=m.max_radius_minutes,
                      home_lat=m.home.lat if m.home else None, home_lon=m.home.lon if m.home else None,
                      radius_centre_lat=m.radius_centre.lat if m.radius_centre else None,
                      radius_centre_lon=m.radius_centre.lon if m.radius_centre else None)
        if member is not None and all(getattr(member, k) == v for k, v in values.items()):
            continue  # already stored as the document says
        _tally(report, "memberships", member is None)
        member = member or TechnicianMembership(technician_id=m.technician_id, territory_id=territory_id, kind=m.kind,
                                                effective_from=m.effective_from)
        for k, v in values.items():
            setattr(member, k, v)
        session.add(member)
        changed += 1
    report.counts["memberships"] = changed
    # A dated shift is matched by technician and local date (the company's time zone): restated, the stored
    # shift of that day is updated (times, kind, on-call priority, scope), never added twice. A day with several
    # shifts (split, on call) pairs those with the same times first, then the others in order of start.
    zone = ZoneInfo(tz)
    shift_rows = _restated(session, Shift, [(sh.technician_id, sh.start, sh.end) for sh, _ in shifts], zone)
    shifts_changed = 0
    kept_shifts: set[int] = set()
    for (shift, all_territories), srow_ in zip(shifts, shift_rows, strict=True):
        scope = session.exec(select(ShiftScope).where(ShiftScope.shift_id == srow_.id)).first() \
            if srow_ is not None else None
        if srow_ is not None:
            assert srow_.id is not None
            kept_shifts.add(srow_.id)
            if (_same_moment(srow_.start, shift.start), _same_moment(srow_.end, shift.end), srow_.kind,
                    srow_.max_priority, bool(scope and scope.all_territories)) == (
                    True, True, shift.kind, shift.max_priority, all_territories):
                continue
            srow_.start, srow_.end = shift.start, shift.end
            srow_.kind, srow_.max_priority = shift.kind, shift.max_priority
            shift = srow_
        _tally(report, "shifts", srow_ is None)
        session.add(shift)
        session.flush()
        assert shift.id is not None
        kept_shifts.add(shift.id)
        if all_territories and scope is None:
            session.add(ShiftScope(shift_id=shift.id, all_territories=True))
        elif scope is not None:
            scope.all_territories = all_territories
            session.add(scope)
        shifts_changed += 1
    report.counts["shifts"] = shifts_changed
    report.kept["shifts"] = kept_shifts
    hours_changed = 0
    for tid, weekly in hours.items():
        stored_hours = session.exec(select(OperatingHours).where(OperatingHours.technician_id == tid)).all()
        wanted = _hours_json(weekly)
        if sorted((h.weekday, h.start, h.end) for h in stored_hours) == sorted(
                (h["weekday"], h["start"], h["end"]) for h in wanted):
            continue  # already what the document says: counted as no change
        for old in stored_hours:
            session.delete(old)
        for h in wanted:
            session.add(OperatingHours(technician_id=tid, **h))
        hours_changed += len(wanted)
        _tally(report, "operating_hours", not stored_hours)
    report.counts["operating_hours"] = hours_changed
    # An absence is matched by technician and the local date it starts: restated, its times and reason update
    # the stored one (several starting the same day pair as shifts do).
    absence_rows = _restated(session, TechnicianAbsence, [(a.technician_id, a.start, a.end) for a in absences], zone)
    absences_changed = 0
    kept_absences: set[int] = set()
    for a, arow in zip(absences, absence_rows, strict=True):
        if arow is not None:
            assert arow.id is not None
            kept_absences.add(arow.id)
            if _same_moment(arow.start, a.start) and _same_moment(arow.end, a.end) and arow.reason == a.reason:
                continue
            arow.start, arow.end, arow.reason = a.start, a.end, a.reason
            a = arow
        _tally(report, "absences", arow is None)
        session.add(a)
        session.flush()
        assert a.id is not None
        kept_absences.add(a.id)
        absences_changed += 1
    report.counts["absences"] = absences_changed
    report.kept["absences"] = kept_absences
    sched_changed = 0
    for terr_name, modes in scheduling:
        terr_id = rows[terr_name].id if terr_name is not None else None
        srow = session.exec(select(SchedulingPolicyRow).where(SchedulingPolicyRow.territory_id == terr_id)).first() \
            if terr_id is not None else session.exec(select(SchedulingPolicyRow).where(
                col(SchedulingPolicyRow.territory_id).is_(None))).first()
        if srow is not None and list(srow.boundaries) == list(modes):
            continue
        _tally(report, "scheduling_policies", srow is None)
        srow = srow or SchedulingPolicyRow(territory_id=terr_id, name=terr_name or "default")
        srow.boundaries = list(modes)
        session.add(srow)
        sched_changed += 1
    report.counts["scheduling_policies"] = sched_changed
    travel_changed = 0
    for tech_id, policy in travel:
        q = select(TravelPolicyRecord).where(
            TravelPolicyRecord.technician_id == tech_id if tech_id is not None
            else col(TravelPolicyRecord.technician_id).is_(None))
        prow = session.exec(q).first() or TravelPolicyRecord(technician_id=tech_id)
        tvalues: dict[str, Any] = dict(start_at=policy.start_at, end_at=policy.end_at,
                                       depot_lat=policy.depot.lat if policy.depot else None,
                                       depot_lon=policy.depot.lon if policy.depot else None,
                                       outbound=policy.outbound, outbound_own_minutes=policy.outbound_own_minutes,
                                       inbound=policy.inbound, inbound_own_minutes=policy.inbound_own_minutes,
                                       max_radius_km=policy.max_radius_km,
                                       max_radius_minutes=policy.max_radius_minutes)
        if prow.id is not None and all(getattr(prow, k) == v for k, v in tvalues.items()):
            continue  # already what the document says
        for k, v in tvalues.items():
            setattr(prow, k, v)
        session.add(prow)
        travel_changed += 1
        _tally(report, "travel_policies", prow.id is None)
    report.counts["travel_policies"] = travel_changed
    session.flush()
    return report


def load_file(path: Path, *, session: Session, tz: str) -> LoadReport:
    """``read_file`` then ``load_rules``."""
    return load_rules(read_file(path), session=session, tz=tz)

