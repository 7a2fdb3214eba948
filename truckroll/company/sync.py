"""A company's set-up as a declarative sync: technicians, the job-type catalogue, customers, shift patterns
with exceptions, and (through ``truckroll.rules.config``) territories, memberships and policies.

``sync(document)`` makes the database say what the document says: the same document twice changes nothing,
a changed item is updated, removals are explicit (``remove:`` or ``prune=True`` for items of a section the
document does not list). The whole document is validated first (unknown keys refused with their path,
references between sections checked); any error refuses all of it and nothing is written. Writes happen in
the caller's transaction. ``export_document`` writes the same format back (YAML, JSON, or CSV per section).
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import pydantic
import yaml
from sqlmodel import Session, col, select

from engine.rules.shifts import ShiftExceptionSpec
from models import JobType, Shift, Technician
from models.company import (
    CompanyDocument,
    CustomerIn,
    HoursIn,
    JobTypeIn,
    MembershipKey,
    ShiftPatternIn,
    SyncReport,
    TechnicianIn,
)
from models.company_tables import Customer, ShiftException, ShiftPattern, TechnicianShiftPattern
from models.rules import WEEKDAYS
from models.territory_tables import (
    CustomerClosedHours,
    OperatingHours,
    ShiftScope,
    TechnicianAbsence,
    TechnicianMembership,
    TravelPolicyRecord,
)
from models.territory_tables import SchedulingPolicy as SchedulingPolicyRow
from models.territory_tables import Territory as TerritoryRow
from truckroll.company.csv_files import (
    CSV_COLUMNS,
    CSV_SECTIONS,
    DOC_PATH,
    read_csv_files,
    section_csv,
    section_of,
    write_csv_files,
)
from truckroll.rules.config import RulesConfigError, load_rules, weekly_hours
from truckroll.rules.store import clock, parse_clock

RULE_SECTIONS = ("territories", "memberships", "shifts", "operating_hours", "absences", "policies")


class CompanyImportError(RulesConfigError):
    """The document was refused; ``errors`` names every failing item with its path. Nothing was written."""


# ---------------------------------------------------------------- reading files


def _is_csv(path: Path) -> bool:
    return path.is_dir() or path.suffix.lower() in (".csv", ".zip")


def read_document(path: Path, *, section: str | None = None) -> dict[str, Any]:
    """A YAML (.yaml/.yml) or JSON company file, one CSV section, or a folder or zip of section CSVs, as a
    document. A CSV document remembers each item's file and row (``_origin``) so errors can name them.

    Raises
    ------
    CompanyImportError
        When the file is missing, does not parse, is not a mapping, or a CSV cell is bad (file, row, column).
    """
    if not path.exists():
        raise CompanyImportError([f"no such file: {path}"])
    if _is_csv(path):
        try:
            csv_doc = read_csv_files(path, section)
        except RulesConfigError as exc:
            raise CompanyImportError(exc.errors) from None
        data = csv_doc.data
        data["_origin"] = csv_doc.origin
        data["_base_dir"] = str(path if path.is_dir() else path.parent)
        return data
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise CompanyImportError([f"{path} does not parse: {exc}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise CompanyImportError([f"{path}: the document must be a mapping of sections"])
    data.setdefault("_base_dir", str(path.parent))
    return data


def csv_section(path: Path, section: str | None = None) -> str:
    """The section one CSV file holds: given, or its name (``technicians.csv``, ``customers-2030.csv``)."""
    name = section or section_of(path.name)
    if name not in CSV_SECTIONS:
        raise CompanyImportError([f"{path}: name the section with --section ({', '.join(CSV_SECTIONS)}) or call "
                                  f"the file after it (technicians.csv)"])
    return name


_WHERE = re.compile(r"^([a-z_]+(?:\.[a-z_]+)*)\[(\d+)\](\.([a-z_]+))?")


def _locate(errors: list[str], origin: dict[str, list[tuple[str, int]]] | None) -> list[str]:
    """Errors about items read from CSV also name the file, row and (when the path says) the column."""
    if not origin:
        return errors
    out = []
    for e in errors:
        m = _WHERE.match(e)
        rows = origin.get(m.group(1)) if m else None
        if m is None or rows is None or int(m.group(2)) >= len(rows):
            out.append(e)
            continue
        file, row = rows[int(m.group(2))]
        section = next((s for s, p in DOC_PATH.items() if ".".join(p) == m.group(1)), None)
        column = None
        if m.group(4) and section is not None:
            column = next((c.name for c in CSV_COLUMNS[section] if c.path[0] == m.group(4)), m.group(4))
        out.append(f"{file} row {row}" + (f" column {column}" if column else "") + f": {e}")
    return out


# ---------------------------------------------------------------- validation


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "document"


def parse_document(data: dict[str, Any]) -> CompanyDocument:
    """The document's shape: every unknown key and bad value, with its path."""
    body = {k: v for k, v in data.items() if not k.startswith("_")}
    try:
        return CompanyDocument.model_validate(body)
    except pydantic.ValidationError as exc:
        errors = []
        for e in exc.errors():
            msg = "unknown key" if e["type"] == "extra_forbidden" else e["msg"]
            errors.append(f"{_path(tuple(e['loc']))}: {msg}")
        raise CompanyImportError(errors) from None


def _hours(items: list[HoursIn]) -> list[dict[str, Any]]:
    """Hours items -> stored weekly rows (validated: raises ValueError naming the day or time)."""
    weekly = weekly_hours([h.model_dump() for h in items])
    return [{"weekday": h.weekday, "start": clock(h.start), "end": "24:00" if h.end.hour == h.end.minute == 0
             else clock(h.end)} for h in weekly]


def _exception(e: Any) -> ShiftExceptionSpec:
    if e.day_off and (e.start or e.end):
        raise ValueError("an exception is either off or has hours, not both")
    if not e.day_off and not (e.start and e.end):
        raise ValueError("give day_off: true, or start and end")
    return ShiftExceptionSpec(e.date, parse_clock(e.start) if e.start else None,
                              parse_clock(e.end) if e.end else None)


class _Plan:
    """The validated document with the database it will be synced to."""

    def __init__(self, doc: CompanyDocument, session: Session, prune: bool, tz: str) -> None:
        self.doc, self.session, self.prune, self.tz = doc, session, prune, tz
        self.errors: list[str] = []
        self.techs = {t.name: t for t in session.exec(select(Technician)).all()}
        self.patterns = {p.name: p for p in session.exec(select(ShiftPattern)).all()}
        self.pattern_hours: dict[str, list[dict[str, Any]]] = {}
        self.closed: dict[str, list[dict[str, Any]]] = {}
        self.pruned_territories: list[str] = []

    def fail(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")

    def check(self) -> None:
        d = self.doc
        for section, key in (("job_types", "name"), ("shift_patterns", "name"), ("technicians", "name"),
                             ("customers", "ref")):
            seen: set[str] = set()
            for i, item in enumerate(getattr(d, section)):
                k = getattr(item, key)
                if k in seen:
                    self.fail(f"{section}[{i}]", f"{key} {k!r} appears twice")
                seen.add(k)
        removed_patterns = set(d.remove.shift_patterns)
        for i, p in enumerate(d.shift_patterns):
            try:
                self.pattern_hours[p.name] = _hours(p.hours)
            except ValueError as exc:
                self.fail(f"shift_patterns[{i}].hours", str(exc))
        known_patterns = (set(self.patterns) | {p.name for p in d.shift_patterns}) - removed_patterns
        file_techs = {t.name for t in d.technicians}
        known_techs = (set(self.techs) | file_techs)
        for i, t in enumerate(d.technicians):
            if t.shift_pattern is not None and t.shift_pattern not in known_patterns:
                self.fail(f"technicians[{i}].shift_pattern", f"unknown shift pattern {t.shift_pattern!r}")
            days: set[date] = set()
            for j, e in enumerate(t.shift_exceptions):
                try:
                    _exception(e)
                    if e.date in days:
                        raise ValueError(f"a second exception on {e.date.isoformat()}")
                    days.add(e.date)
                except ValueError as exc:
                    self.fail(f"technicians[{i}].shift_exceptions[{j}]", str(exc))
        for i, c in enumerate(d.customers):
            try:
                self.closed[c.ref] = _hours(c.closed_hours)
            except ValueError as exc:
                self.fail(f"customers[{i}].closed_hours", str(exc))
            for key in ("preferred_technicians", "excluded_technicians"):
                for j, name in enumerate(getattr(c, key)):
                    if name not in known_techs:
                        self.fail(f"customers[{i}].{key}[{j}]", f"unknown technician {name!r}")
            both = set(c.preferred_technicians) & set(c.excluded_technicians)
            if both:
                self.fail(f"customers[{i}]", f"technician(s) both preferred and excluded: {', '.join(sorted(both))}")
        self._check_removals(file_techs)
        stored_users: dict[int, list[str]] = {}
        for link in self.session.exec(select(TechnicianShiftPattern)).all():
            tech = self.session.get(Technician, link.technician_id)
            if tech is not None and tech.name not in file_techs:
                stored_users.setdefault(link.pattern_id, []).append(tech.name)
        for j, name in enumerate(d.remove.shift_patterns):
            pat = self.patterns.get(name)
            users = [t.name for t in d.technicians if t.shift_pattern == name] + (
                stored_users.get(pat.id or -1, []) if pat is not None else [])
            if users:
                self.fail(f"remove.shift_patterns[{j}]", f"pattern {name!r} is still used by {', '.join(users)}")

    def _check_removals(self, file_techs: set[str]) -> None:
        """A removal may not contradict the document (an item both listed and removed) nor leave a reference
        behind (a territory still used). Removing what is not there is no error: ``_remove`` notes it."""
        d = self.doc
        listed: dict[str, set[Any]] = {
            "technicians": file_techs, "job_types": {j.name for j in d.job_types},
            "customers": {c.ref for c in d.customers}, "shift_patterns": {p.name for p in d.shift_patterns},
            "territories": {i.get("name") for i in d.territories or [] if isinstance(i, dict)},
            "operating_hours": {i.get("technician") for i in d.operating_hours or [] if isinstance(i, dict)}}
        for key, names in listed.items():
            for j, name in enumerate(getattr(d.remove, key)):
                if name in names:
                    self.fail(f"remove.{key}[{j}]", f"{name!r} is both listed and removed")
        restated = _membership_keys(d.memberships)
        for j, m in enumerate(d.remove.memberships):
            if _mkey(m) in restated:
                self.fail(f"remove.memberships[{j}]", "this membership is both listed and removed")
        tz = ZoneInfo(self.tz)
        for key, items in (("shifts", d.shifts), ("absences", d.absences)):
            kept = _interval_keys(items)
            days = {(t, a.astimezone(tz).date()) for t, a, _ in kept}
            for j, k in enumerate(getattr(d.remove, key)):
                if (k.technician, k.start, k.end) in kept or (k.technician, k.date) in days:
                    self.fail(f"remove.{key}[{j}]", "both listed and removed")
        tech_items = {t.name: t for t in d.technicians}
        for j, e in enumerate(d.remove.shift_exceptions):
            t = tech_items.get(e.technician)
            if t is not None and any(x.date == e.date for x in t.shift_exceptions):
                self.fail(f"remove.shift_exceptions[{j}]", "both listed (under the technician) and removed")
        linked = {link.technician_id for link in self.session.exec(select(TechnicianShiftPattern)).all()}
        for j, name in enumerate(d.remove.operating_hours):
            tech = self.techs.get(name)
            pattern = tech_items[name].shift_pattern if name in tech_items else (
                "its shift pattern" if tech is not None and tech.id in linked else None)
            if pattern is not None:
                self.fail(f"remove.operating_hours[{j}]", f"{name!r} works {pattern!r}: their weekly hours are "
                                                          f"the pattern's (change the technician's shift_pattern)")
        pols = d.policies or {}
        for key, field, removed in (("scheduling", "territory", d.remove.policies.scheduling),
                                    ("travel", "technician", d.remove.policies.travel)):
            named = {i.get(field) for i in pols.get(key) or [] if isinstance(i, dict)}
            for j, k in enumerate(removed):
                if getattr(k, field) in named:
                    self.fail(f"remove.policies.{key}[{j}]", "both listed and removed")
        self._check_territory_removals(restated)

    def _check_territory_removals(self, restated: set[tuple[str, str, str, date]]) -> None:
        d = self.doc
        rows = {t.name: t for t in self.session.exec(select(TerritoryRow)).all()}
        listed = {i.get("name") for i in d.territories or [] if isinstance(i, dict)}
        # With prune, a listed territories section keeps only the territories it names (children first).
        self.pruned_territories = sorted(set(rows) - listed - set(d.remove.territories)) \
            if self.prune and d.territories else []
        gone = set(d.remove.territories) | set(self.pruned_territories)
        gone_memberships = {_mkey(m) for m in d.remove.memberships}
        tech_names = {t.id: n for n, t in self.techs.items()}
        if self.prune and d.memberships:  # memberships the file does not restate are pruned too
            gone_memberships |= {(tech_names.get(m.technician_id, ""), next(
                (n for n, r in rows.items() if r.id == m.territory_id), ""), m.kind, m.effective_from)
                for m in self.session.exec(select(TechnicianMembership)).all()} - restated
        targets = [(f"remove.territories[{j}]", name) for j, name in enumerate(d.remove.territories)] + [
            (f"territories ({name}: not listed, so --prune removes it)", name) for name in self.pruned_territories]
        for where, name in targets:
            row = rows.get(name)
            if row is None:
                continue
            users = [f"membership of {m['technician']}" for m in d.memberships or []
                     if isinstance(m, dict) and m.get("territory") == name]
            users += [f"territory {i.get('name')}" for i in d.territories or []
                      if isinstance(i, dict) and i.get("parent") == name]
            users += [f"scheduling policy of {name}" for i in (d.policies or {}).get("scheduling") or []
                      if isinstance(i, dict) and i.get("territory") == name]
            for m in self.session.exec(select(TechnicianMembership).where(
                    TechnicianMembership.territory_id == row.id)).all():
                key = (tech_names.get(m.technician_id, ""), name, m.kind, m.effective_from)
                if key not in gone_memberships and key not in restated:
                    users.append(f"membership of {key[0]} from {m.effective_from.isoformat()}")
            users += [f"territory {t.name}" for t in rows.values()
                      if t.parent_id == row.id and t.name not in gone]
            if users:
                self.fail(where, f"territory {name!r} is still used by {', '.join(users)} (remove those too)")


# ---------------------------------------------------------------- writing


def _count(report: SyncReport, section: str, what: str, n: int = 1) -> None:
    bucket = getattr(report, what)
    bucket[section] = bucket.get(section, 0) + n


def _assign(row: Any, values: dict[str, Any]) -> bool:
    changed = False
    for k, v in values.items():
        if getattr(row, k) != v:
            setattr(row, k, v)
            changed = True
    return changed


def _upsert(session: Session, report: SyncReport, section: str, row: Any, new: Any, values: dict[str, Any]) -> Any:
    if row is None:
        row = new
        _assign(row, values)
        _count(report, section, "created")
    elif _assign(row, values):
        _count(report, section, "updated")
    else:
        _count(report, section, "unchanged")
        return row
    session.add(row)
    session.flush()
    return row


def _job_type_values(j: JobTypeIn) -> dict[str, Any]:
    return dict(trade=j.trade, default_duration_minutes=j.duration_minutes,
                skill_levels_by_complexity=j.skills, required_certifications=list(j.certifications),
                typical_parts=dict(j.parts), typical_value=j.typical_value)


def _technician_values(t: TechnicianIn) -> dict[str, Any]:
    return dict(email=t.email, phone=t.phone, home_lat=t.home.lat, home_lon=t.home.lon, skills=dict(t.skills),
                certifications={k: v.isoformat() for k, v in t.certifications.items()},
                upsell_multiplier=t.multiplier, van_inventory=dict(t.van_inventory), active=t.active)


def _sync_pattern_of(session: Session, report: SyncReport, tech: Technician, pattern: ShiftPattern | None,
                     hours: list[dict[str, Any]] | None) -> None:
    """The technician's pattern link and weekly operating hours (the pattern's)."""
    assert tech.id is not None
    link = session.exec(select(TechnicianShiftPattern).where(TechnicianShiftPattern.technician_id == tech.id)).first()
    if pattern is None:
        if link is not None:
            session.delete(link)
            _count(report, "technician_shift_patterns", "removed")
        return
    assert pattern.id is not None
    if link is None:
        session.add(TechnicianShiftPattern(technician_id=tech.id, pattern_id=pattern.id))
        _count(report, "technician_shift_patterns", "created")
    elif link.pattern_id != pattern.id:
        link.pattern_id = pattern.id
        session.add(link)
        _count(report, "technician_shift_patterns", "updated")
    want = sorted((h["weekday"], h["start"], h["end"]) for h in (hours if hours is not None else pattern.hours))
    stored = session.exec(select(OperatingHours).where(OperatingHours.technician_id == tech.id)).all()
    if sorted((h.weekday, h.start, h.end) for h in stored) != want:
        for h in stored:
            session.delete(h)
        for wd, a, b in want:
            session.add(OperatingHours(technician_id=tech.id, weekday=wd, start=a, end=b))
        _count(report, "operating_hours", "updated" if stored else "created")


def _sync_exceptions(session: Session, report: SyncReport, tech: Technician, items: list[Any]) -> None:
    assert tech.id is not None
    stored = {e.day: e for e in session.exec(select(ShiftException).where(
        ShiftException.technician_id == tech.id)).all()}
    wanted = {e.date: e for e in items}
    for day, row in stored.items():
        if day not in wanted:
            session.delete(row)
            _count(report, "shift_exceptions", "removed")
    for day, e in wanted.items():
        spec = _exception(e)
        values = dict(start=clock(spec.start) if spec.start else None,
                      end=("24:00" if spec.end.hour == spec.end.minute == 0 else clock(spec.end)) if spec.end else None,
                      reason=e.reason)
        _upsert(session, report, "shift_exceptions", stored.get(day),
                ShiftException(technician_id=tech.id, day=day), values)


def sync(data: dict[str, Any], *, session: Session, tz: str, prune: bool = False) -> SyncReport:
    """Validate the whole document, then make the database say what it says (in the caller's transaction).
    ``tz`` is the company's time zone (the setting ``company_timezone``): dated shifts and absences are matched by
    their local date in it.

    Raises
    ------
    CompanyImportError
        Naming every failing item with its path; nothing has been written.
    """
    try:
        return _sync(data, session, prune, tz)
    except CompanyImportError as exc:
        raise CompanyImportError(_locate(exc.errors, data.get("_origin"))) from None


def _sync(data: dict[str, Any], session: Session, prune: bool, tz: str) -> SyncReport:
    doc = parse_document(data)
    plan = _Plan(doc, session, prune, tz)
    plan.check()
    if plan.errors:
        raise CompanyImportError(plan.errors)
    report = SyncReport()

    for j in doc.job_types:
        jrow = session.exec(select(JobType).where(JobType.name == j.name)).first()
        _upsert(session, report, "job_types", jrow, JobType(name=j.name, default_duration_minutes=j.duration_minutes),
                _job_type_values(j))
    for p in doc.shift_patterns:
        plan.patterns[p.name] = _upsert(session, report, "shift_patterns", plan.patterns.get(p.name),
                                        ShiftPattern(name=p.name), dict(hours=plan.pattern_hours[p.name]))
    for t in doc.technicians:
        known = plan.techs.get(t.name)
        tech = _upsert(session, report, "technicians", known, Technician(name=t.name, home_lat=t.home.lat,
                                                                        home_lon=t.home.lon), _technician_values(t))
        plan.techs[t.name] = tech
        pattern = plan.patterns.get(t.shift_pattern) if t.shift_pattern else None
        _sync_pattern_of(session, report, tech, pattern,
                         plan.pattern_hours.get(t.shift_pattern) if t.shift_pattern else None)
        _sync_exceptions(session, report, tech, t.shift_exceptions)
    # Technicians whose pattern changed through the pattern itself (not listed in this document).
    listed = {t.name for t in doc.technicians}
    for p in doc.shift_patterns:
        pat = plan.patterns[p.name]
        for link in session.exec(select(TechnicianShiftPattern).where(
                TechnicianShiftPattern.pattern_id == pat.id)).all():
            tech = session.get(Technician, link.technician_id)
            if tech is not None and tech.name not in listed:
                _sync_pattern_of(session, report, tech, pat, plan.pattern_hours[p.name])
    ids = {name: t.id for name, t in plan.techs.items()}
    for c in doc.customers:
        crow = session.exec(select(Customer).where(Customer.ref == c.ref)).first()
        _upsert(session, report, "customers", crow, Customer(ref=c.ref, name=c.name, lat=c.lat, lon=c.lon),
                dict(name=c.name, email=c.email, phone=c.phone, address=c.address, lat=c.lat, lon=c.lon,
                     notes=c.notes, closed_hours=plan.closed[c.ref],
                     preferred_technician_ids=[ids[n] for n in c.preferred_technicians],
                     excluded_technician_ids=[ids[n] for n in c.excluded_technicians]))

    _remove(doc, plan, report)

    rules = {k: getattr(doc, k) for k in RULE_SECTIONS if getattr(doc, k) is not None}
    if rules:
        rules["_base_dir"] = data.get("_base_dir", ".")
        session.flush()
        try:
            loaded = load_rules(rules, session=session, tz=tz)
        except CompanyImportError:
            raise
        except RulesConfigError as exc:  # the caller's transaction rolls back what was written above
            raise CompanyImportError(exc.errors) from None
        report.rules = {k: n for k, n in loaded.counts.items() if n}
        for what in ("created", "updated"):
            for k, n in getattr(loaded, what).items():
                if n:
                    _count(report, k, what, n)
        if prune:
            _prune_intervals(doc, session, report, loaded.kept)
    session.flush()
    return report


def _day(value: Any) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None  # load_rules names it


def _moment(value: Any) -> datetime | None:
    try:
        dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return None  # load_rules names it
    return dt if dt.tzinfo is not None else None


def _mkey(m: MembershipKey) -> tuple[str, str, str, date]:
    return (m.technician, m.territory, m.kind, m.from_)


def _membership_keys(items: list[dict[str, Any]] | None) -> set[tuple[str, str, str, date]]:
    """The keys memberships are matched by: technician, territory, kind, start (as load_rules matches them)."""
    out = set()
    for i in items or []:
        if isinstance(i, dict):
            start = _day(i.get("from", i.get("effective_from"))) if i.get(
                "from", i.get("effective_from")) is not None else date(2000, 1, 1)
            if start is not None:
                out.add((str(i.get("technician")), str(i.get("territory")), str(i.get("kind", "primary")), start))
    return out


def _interval_keys(items: list[dict[str, Any]] | None) -> set[tuple[str, datetime, datetime]]:
    """The keys shifts and absences are matched by: technician, start, end."""
    out = set()
    for i in items or []:
        if isinstance(i, dict):
            a, b = _moment(i.get("start")), _moment(i.get("end"))
            if a is not None and b is not None:
                out.add((str(i.get("technician")), a, b))
    return out


def _remove(doc: CompanyDocument, plan: _Plan, report: SyncReport) -> None:
    """Explicit removals (``remove:``) and, with ``prune``, what a listed section does not name. Rule items
    go before ``load_rules`` runs, so a membership removed and another added in its place do not overlap."""
    session = plan.session
    r = doc.remove

    def note(where: str, what: str) -> None:
        report.notes.append(f"{where}: no {what} (nothing to remove)")

    gone_techs = set(r.technicians)
    gone_types = set(r.job_types)
    gone_customers = set(r.customers)
    gone_patterns = set(r.shift_patterns)
    if plan.prune:
        if doc.technicians:
            gone_techs |= {n for n, t in plan.techs.items() if t.active} - {t.name for t in doc.technicians}
        if doc.job_types:
            gone_types |= set(session.exec(select(JobType.name)).all()) - {j.name for j in doc.job_types}
        if doc.customers:
            gone_customers |= set(session.exec(select(Customer.ref)).all()) - {c.ref for c in doc.customers}
        if doc.shift_patterns:
            used = set(session.exec(select(TechnicianShiftPattern.pattern_id)).all())
            gone_patterns |= {n for n, p in plan.patterns.items() if p.id not in used} - {
                p.name for p in doc.shift_patterns}
    for name in sorted(gone_techs):
        tech = plan.techs.get(name)
        if tech is None:
            note(f"remove.technicians[{r.technicians.index(name)}]", f"technician {name!r}")
        elif tech.active:
            tech.active = False  # its assignments and history stay; it takes no more work
            session.add(tech)
            _count(report, "technicians", "removed")
    for key, model, field, names, label in (
            ("job_types", JobType, "name", gone_types, "job type"),
            ("customers", Customer, "ref", gone_customers, "customer"),
            ("shift_patterns", ShiftPattern, "name", gone_patterns, "shift pattern")):
        for name in sorted(names):
            row = session.exec(select(model).where(getattr(model, field) == name)).first()
            if row is None:
                note(f"remove.{key}[{getattr(r, key).index(name)}]", f"{label} {name!r}")
            else:  # a pattern is unused: checked (remove) or selected so (prune)
                session.delete(row)
                _count(report, key, "removed")
    session.flush()
    _remove_rules(doc, plan, report, note)


def _remove_rules(doc: CompanyDocument, plan: _Plan, report: SyncReport, note: Any) -> None:
    session, r = plan.session, doc.remove
    ids = {n: t.id for n, t in plan.techs.items()}
    names = {t.id: n for n, t in plan.techs.items()}
    terrs = {t.name: t for t in session.exec(select(TerritoryRow)).all()}
    terr_names = {t.id: n for n, t in terrs.items()}

    def delete(row: Any, section: str) -> None:
        if isinstance(row, Shift):
            for scope in session.exec(select(ShiftScope).where(ShiftScope.shift_id == row.id)).all():
                session.delete(scope)
            session.flush()  # the scope before its shift
        session.delete(row)
        _count(report, section, "removed")

    for j, e in enumerate(r.shift_exceptions):
        exc_row = session.exec(select(ShiftException).where(
            ShiftException.technician_id == ids.get(e.technician, -1), ShiftException.day == e.date)).first()
        if exc_row is None:
            note(f"remove.shift_exceptions[{j}]", f"exception of {e.technician!r} on {e.date.isoformat()}")
        else:
            delete(exc_row, "shift_exceptions")
    # Memberships.
    stored_m = {(names.get(m.technician_id, ""), terr_names.get(m.territory_id, ""), m.kind, m.effective_from): m
                for m in session.exec(select(TechnicianMembership)).all()}
    for j, mk in enumerate(r.memberships):
        if _mkey(mk) in stored_m:
            delete(stored_m.pop(_mkey(mk)), "memberships")
        else:
            note(f"remove.memberships[{j}]", f"{mk.kind} membership of {mk.technician!r} in {mk.territory!r} "
                                             f"from {mk.from_.isoformat()}")
    if plan.prune and doc.memberships:
        for mkey in sorted(set(stored_m) - _membership_keys(doc.memberships)):
            delete(stored_m[mkey], "memberships")
    # Dated shifts and absences: by technician and local date (every shift of that day, the absence starting
    # that day) or by exact start and end. Prune goes after load_rules (``_prune_intervals``), which matches
    # the document's items to stored rows.
    tz = ZoneInfo(plan.tz)
    interval_models: tuple[tuple[str, type[Shift] | type[TechnicianAbsence]], ...] = (
        ("shifts", Shift), ("absences", TechnicianAbsence))
    for section, imodel in interval_models:
        stored_rows = [cast(Any, x) for x in session.exec(select(imodel)).all()]
        for j, k in enumerate(getattr(r, section)):
            tid = ids.get(k.technician, -1)
            if k.date is not None:
                found = [x for x in stored_rows if x.technician_id == tid and _local(x.start, tz).date() == k.date]
                label = f"{section[:-1]} of {k.technician!r} on {k.date.isoformat()}"
            else:
                found = [x for x in stored_rows if x.technician_id == tid and _local(x.start, tz) == k.start
                         and _local(x.end, tz) == k.end]
                label = f"{section[:-1]} of {k.technician!r} from {k.start.isoformat()} to {k.end.isoformat()}"
            if not found:
                note(f"remove.{section}[{j}]", label)
            for x in found:
                stored_rows.remove(x)
                delete(x, section)
    # Weekly operating hours of technicians without a pattern.
    linked = {link.technician_id for link in session.exec(select(TechnicianShiftPattern)).all()}
    gone_hours = {(j, n) for j, n in enumerate(r.operating_hours)}
    if plan.prune and doc.operating_hours:
        listed_h = {i.get("technician") for i in doc.operating_hours if isinstance(i, dict)}
        gone_hours |= {(-1, n) for n, t in plan.techs.items() if t.id not in linked and n not in listed_h}
    for j, name in sorted(gone_hours, key=lambda x: (x[1], x[0])):
        rows = session.exec(select(OperatingHours).where(OperatingHours.technician_id == ids.get(name, -1))).all()
        if not rows and j >= 0:
            note(f"remove.operating_hours[{j}]", f"weekly hours of {name!r}")
        for h in rows:
            session.delete(h)
        if rows:
            _count(report, "operating_hours", "removed")
    # Policies: by territory (scheduling) or technician (travel); none = the company default.
    pols = doc.policies or {}
    policy_models: tuple[tuple[str, type[SchedulingPolicyRow] | type[TravelPolicyRecord], str], ...] = (
        ("scheduling", SchedulingPolicyRow, "territory"), ("travel", TravelPolicyRecord, "technician"))
    for kind, pmodel, field in policy_models:
        back: dict[Any, str] = terr_names if kind == "scheduling" else names
        stored_p: dict[str | None, Any] = {}
        for prow in session.exec(select(pmodel)).all():
            row_ref = getattr(prow, f"{field}_id")
            stored_p[back.get(row_ref, "") if row_ref is not None else None] = prow
        for j, k in enumerate(getattr(r.policies, kind)):
            ref = getattr(k, field)
            hit = stored_p.pop(ref, None)
            if hit is None:
                note(f"remove.policies.{kind}[{j}]", f"{kind} policy " + (
                    f"of {field} {ref!r}" if ref is not None else "for the company default"))
            else:
                delete(hit, f"{kind}_policies")
        if plan.prune and pols.get(kind):
            listed_p = {i.get(field) for i in pols[kind] if isinstance(i, dict)}
            for ref in set(stored_p) - listed_p:
                delete(stored_p[ref], f"{kind}_policies")
    # Territories last (their memberships and children went first; checked), with their own scheduling policy.
    session.flush()
    gone_terrs = list(enumerate(r.territories)) + [(-1, n) for n in plan.pruned_territories]
    for j, name in sorted(gone_terrs, key=lambda x: -terrs[x[1]].level if x[1] in terrs else 0):
        terr = terrs.get(name)
        if terr is None:
            note(f"remove.territories[{j}]", f"territory {name!r}")
            continue
        for pol in session.exec(select(SchedulingPolicyRow).where(SchedulingPolicyRow.territory_id == terr.id)).all():
            delete(pol, "scheduling_policies")
        session.flush()
        delete(terr, "territories")
        session.flush()
    session.flush()


def _local(dt: datetime, tz: ZoneInfo) -> datetime:
    """A stored date-time (naive from SQLite: UTC) in ``tz``."""
    return (dt if dt.tzinfo is not None else dt.replace(tzinfo=ZoneInfo("UTC"))).astimezone(tz)


def _prune_intervals(doc: CompanyDocument, session: Session, report: SyncReport, kept: dict[str, set[int]]) -> None:
    """With prune, a listed ``shifts`` or ``absences`` section keeps only the rows its items restate."""
    interval_models: tuple[tuple[str, type[Shift] | type[TechnicianAbsence]], ...] = (
        ("shifts", Shift), ("absences", TechnicianAbsence))
    for section, imodel in interval_models:
        if not getattr(doc, section):
            continue
        for x in [cast(Any, row) for row in session.exec(select(imodel)).all()]:
            if x.id not in kept.get(section, set()):
                if isinstance(x, Shift):
                    for scope in session.exec(select(ShiftScope).where(ShiftScope.shift_id == x.id)).all():
                        session.delete(scope)
                    session.flush()
                session.delete(x)
                _count(report, section, "removed")
    session.flush()


def sync_file(path: Path, *, session: Session, tz: str, prune: bool = False,
              section: str | None = None) -> SyncReport:
    """``read_document`` then ``sync``."""
    return sync(read_document(path, section=section), session=session, tz=tz, prune=prune)


# Each section whose items are named (a customer by its ref), by its table and key column.
_NAMED: dict[str, tuple[Any, str]] = {"technicians": (Technician, "name"), "job_types": (JobType, "name"),
                                      "customers": (Customer, "ref"), "shift_patterns": (ShiftPattern, "name"),
                                      "territories": (TerritoryRow, "name")}


def exists(section: str, key: str, *, session: Session) -> bool:
    """Whether ``section`` (technicians, job_types, customers, shift_patterns, territories) has the item named
    ``key`` (a customer's ref)."""
    model, field = _NAMED[section]
    return session.exec(select(model.id).where(getattr(model, field) == key)).first() is not None


# ---------------------------------------------------------------- customers on requests


def customer_for_request(ref: str, *, session: Session) -> Customer | None:
    return session.exec(select(Customer).where(Customer.ref == ref)).first()


def apply_customer(request_id: int, customer: Customer, *, session: Session) -> None:
    """A request for a known customer takes their closed hours (the engine's ``CustomerClosedHours``)."""
    for h in customer.closed_hours:
        session.add(CustomerClosedHours(request_id=request_id, weekday=int(h["weekday"]), start=str(h["start"]),
                                        end=str(h["end"])))
    session.flush()


# ---------------------------------------------------------------- export


def _hours_out(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"days": WEEKDAYS[int(h["weekday"])], "start": h["start"], "end": h["end"]} for h in rows]


def export_document(*, session: Session, tz: str) -> dict[str, Any]:
    """The company as a document ``sync`` accepts: importing it changes nothing."""
    patterns = {p.id: p for p in session.exec(select(ShiftPattern).order_by(col(ShiftPattern.name))).all()}
    links = {link.technician_id: link.pattern_id for link in session.exec(select(TechnicianShiftPattern)).all()}
    techs = session.exec(select(Technician).order_by(col(Technician.id))).all()
    names = {t.id: t.name for t in techs}
    exceptions: dict[int, list[ShiftException]] = {}
    for e in session.exec(select(ShiftException).order_by(col(ShiftException.day))).all():
        exceptions.setdefault(e.technician_id, []).append(e)
    doc: dict[str, Any] = {
        "job_types": [
            {"name": j.name, "trade": j.trade, "duration_minutes": j.default_duration_minutes,
             "skills": j.skill_levels_by_complexity, "certifications": j.required_certifications,
             "parts": j.typical_parts, "typical_value": j.typical_value}
            for j in session.exec(select(JobType).order_by(col(JobType.name))).all()],
        "shift_patterns": [{"name": p.name, "hours": _hours_out(p.hours)} for p in patterns.values()],
        "technicians": [],
        "customers": [],
    }
    for t in techs:
        item: dict[str, Any] = {"name": t.name, "email": t.email, "phone": t.phone,
                                "home": {"lat": t.home_lat, "lon": t.home_lon}, "skills": t.skills,
                                "certifications": t.certifications, "multiplier": t.upsell_multiplier,
                                "van_inventory": t.van_inventory, "active": t.active}
        if t.id in links:
            item["shift_pattern"] = patterns[links[t.id]].name
        if exceptions.get(t.id or -1):
            item["shift_exceptions"] = [
                {"date": e.day.isoformat(), "day_off": True, "reason": e.reason} if e.start is None
                else {"date": e.day.isoformat(), "start": e.start, "end": e.end, "reason": e.reason}
                for e in exceptions[t.id or -1]]
        doc["technicians"].append(item)
    for c in session.exec(select(Customer).order_by(col(Customer.ref))).all():
        doc["customers"].append({
            "ref": c.ref, "name": c.name, "email": c.email, "phone": c.phone, "address": c.address, "lat": c.lat,
            "lon": c.lon, "notes": c.notes, "closed_hours": _hours_out(c.closed_hours),
            "preferred_technicians": [names[i] for i in c.preferred_technician_ids if i in names],
            "excluded_technicians": [names[i] for i in c.excluded_technician_ids if i in names]})
    terrs = session.exec(select(TerritoryRow).order_by(col(TerritoryRow.level), col(TerritoryRow.name))).all()
    if terrs:
        tnames = {t.id: t.name for t in terrs}
        doc["territories"] = [
            {"name": t.name, "timezone": t.timezone, "geojson": t.geometry,
             **({"parent": tnames[t.parent_id]} if t.parent_id in tnames else {}),
             **({"visiting_hours": _hours_out(t.visiting_hours)} if t.visiting_hours else {})} for t in terrs]
        doc["memberships"] = [
            {"technician": names[m.technician_id], "territory": tnames[m.territory_id], "kind": m.kind,
             "from": m.effective_from.isoformat(),
             **({"until": m.effective_until.isoformat()} if m.effective_until else {}),
             **({"max_radius_km": m.max_radius_km} if m.max_radius_km is not None else {}),
             **({"max_radius_minutes": m.max_radius_minutes} if m.max_radius_minutes is not None else {}),
             **({"home": {"lat": m.home_lat, "lon": m.home_lon}} if m.home_lat is not None else {}),
             **({"radius_centre": {"lat": m.radius_centre_lat, "lon": m.radius_centre_lon}}
                if m.radius_centre_lat is not None else {})}
            for m in sorted(session.exec(select(TechnicianMembership)).all(), key=lambda m: (
                m.technician_id, tnames.get(m.territory_id, ""), m.kind, m.effective_from))]
    _export_rules(doc, session, names, links, tnames if terrs else {}, ZoneInfo(tz))
    return doc


def _export_rules(doc: dict[str, Any], session: Session, names: dict[int | None, str], links: dict[int, int],
                  tnames: dict[int | None, str], tz: ZoneInfo) -> None:
    """Dated shifts, absences, the weekly hours of technicians without a pattern, and the policies: the rule
    sections the document holds, each only when there is something in it (times in the company's zone ``tz``)."""

    def moment(dt: datetime) -> str:
        return dt.astimezone(tz).isoformat()

    scopes = {s.shift_id for s in session.exec(select(ShiftScope)).all() if s.all_territories}
    shifts = [
        {"technician": names[sh.technician_id], "start": moment(sh.start), "end": moment(sh.end), "kind": sh.kind,
         **({"max_priority": sh.max_priority} if sh.max_priority is not None else {}),
         **({"all_territories": True} if sh.id in scopes else {})}
        for sh in session.exec(select(Shift).order_by(col(Shift.technician_id), col(Shift.start),
                                                      col(Shift.end))).all() if sh.technician_id in names]
    absences = [
        {"technician": names[a.technician_id], "start": moment(a.start), "end": moment(a.end), "reason": a.reason}
        for a in session.exec(select(TechnicianAbsence).order_by(
            col(TechnicianAbsence.technician_id), col(TechnicianAbsence.start), col(TechnicianAbsence.end))).all()
        if a.technician_id in names]
    weekly: dict[int, list[dict[str, Any]]] = {}
    for h in session.exec(select(OperatingHours).order_by(col(OperatingHours.technician_id),
                                                          col(OperatingHours.weekday),
                                                          col(OperatingHours.start))).all():
        if h.technician_id not in links:  # a pattern's technicians take its hours
            weekly.setdefault(h.technician_id, []).append({"weekday": h.weekday, "start": h.start, "end": h.end})
    hours = [{"technician": names[tid], "hours": _hours_out(rows)} for tid, rows in weekly.items() if tid in names]
    scheduling = [
        {**({"territory": tnames[p.territory_id]} if p.territory_id is not None else {}),
         "boundaries": list(p.boundaries)}
        for p in session.exec(select(SchedulingPolicyRow).order_by(col(SchedulingPolicyRow.id))).all()
        if p.territory_id is None or p.territory_id in tnames]
    travel = [
        {**({"technician": names[p.technician_id]} if p.technician_id is not None else {}),
         "start_at": p.start_at, "end_at": p.end_at,
         **({"depot": {"lat": p.depot_lat, "lon": p.depot_lon}} if p.depot_lat is not None else {}),
         "outbound": p.outbound, "outbound_own_minutes": p.outbound_own_minutes, "inbound": p.inbound,
         "inbound_own_minutes": p.inbound_own_minutes,
         **({"max_radius_km": p.max_radius_km} if p.max_radius_km is not None else {}),
         **({"max_radius_minutes": p.max_radius_minutes} if p.max_radius_minutes is not None else {})}
        for p in session.exec(select(TravelPolicyRecord).order_by(col(TravelPolicyRecord.id))).all()
        if p.technician_id is None or p.technician_id in names]
    for key, items in (("shifts", shifts), ("operating_hours", hours), ("absences", absences)):
        if items:
            doc[key] = items
    if scheduling or travel:
        doc["policies"] = {k: v for k, v in (("scheduling", scheduling), ("travel", travel)) if v}


def export_csv(section: str, *, session: Session, tz: str) -> str:
    """One section as CSV (the columns ``read_document`` reads back)."""
    try:
        return section_csv(section, export_document(session=session, tz=tz))
    except RulesConfigError as exc:
        raise CompanyImportError(exc.errors) from None


def export_csv_files(target: Path, *, session: Session, tz: str) -> list[str]:
    """Every section as ``SECTION.csv`` into a folder or a ``.zip``: importing it back changes nothing."""
    return write_csv_files(export_document(session=session, tz=tz), target)


__all__ = ["CompanyImportError", "CustomerIn", "ShiftPatternIn", "apply_customer", "customer_for_request", "exists",
           "export_csv", "export_csv_files", "export_document", "read_document", "sync", "sync_file"]
