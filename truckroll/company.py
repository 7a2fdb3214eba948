"""A company's set-up as a declarative sync: technicians, the job-type catalogue, customers, shift patterns
with exceptions, and (through ``truckroll.rules_config``) territories, memberships and policies.

``sync(document)`` makes the database say what the document says: the same document twice changes nothing,
a changed item is updated, removals are explicit (``remove:`` or ``prune=True`` for items of a section the
document does not list). The whole document is validated first (unknown keys refused with their path,
references between sections checked); any error refuses all of it and nothing is written. Writes happen in
the caller's transaction. ``export_document`` writes the same format back (YAML, JSON, or CSV per section).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path
from typing import Any

import pydantic
import yaml
from sqlmodel import Session, col, select

from engine.shifts import ShiftExceptionSpec
from models import JobType, Technician
from models.company import (
    CompanyDocument,
    CustomerIn,
    HoursIn,
    JobTypeIn,
    ShiftPatternIn,
    SyncReport,
    TechnicianIn,
)
from models.company_tables import Customer, ShiftException, ShiftPattern, TechnicianShiftPattern
from models.rules import WEEKDAYS
from models.territory_tables import CustomerClosedHours, OperatingHours, TechnicianMembership
from models.territory_tables import Territory as TerritoryRow
from truckroll.rules_config import RulesConfigError, load_rules, weekly_hours
from truckroll.rules_store import clock, parse_clock

RULE_SECTIONS = ("territories", "memberships", "shifts", "operating_hours", "absences", "policies")
CSV_SECTIONS = ("technicians", "customers", "job_types")


class CompanyImportError(RulesConfigError):
    """The document was refused; ``errors`` names every failing item with its path. Nothing was written."""


# ---------------------------------------------------------------- reading files


def _pairs(text: str, name: str) -> dict[str, str]:
    """"plumbing:3; hvac:2" -> {"plumbing": "3", "hvac": "2"}."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(";"))):
        key, sep, value = part.partition(":")
        if not sep:
            raise ValueError(f"{name}: {part!r} must be NAME:VALUE")
        out[key.strip()] = value.strip()
    return out


def _hours_cell(text: str) -> list[dict[str, str]]:
    """"mon 12:00-13:00; sat 08:00-12:00" -> hours items."""
    out = []
    for part in filter(None, (p.strip() for p in (text or "").split(";"))):
        days, _, span = part.partition(" ")
        start, _, end = span.strip().partition("-")
        out.append({"days": days, "start": start, "end": end})
    return out


def _exception_cell(text: str) -> dict[str, Any]:
    """"2030-01-08 off = training" or "2030-01-09 10:00-14:00" -> a shift exception item."""
    day, _, rest = text.partition(" ")
    hours, _, reason = (rest or "off").partition("=")
    hours = hours.strip()
    item: dict[str, Any] = {"date": day.strip(), "reason": reason.strip()}
    if hours == "off":
        return item | {"day_off": True}
    start, sep, end = hours.partition("-")
    if not sep:
        raise ValueError(f"shift_exceptions: {text!r} must be 'DATE off' or 'DATE HH:MM-HH:MM'")
    return item | {"start": start.strip(), "end": end.strip()}


def _exception_text(e: dict[str, Any]) -> str:
    text = f"{e['date']} off" if e.get("day_off") else f"{e['date']} {e['start']}-{e['end']}"
    return f"{text} = {e['reason']}" if e.get("reason") else text


def _typed_cells(item: dict[str, Any]) -> dict[str, Any]:
    """CSV cells are text; the document's numbers and flags are typed (models.company refuses "12" for 12)."""
    out: dict[str, Any] = {}
    for k, v in item.items():
        if isinstance(v, dict) and k in _CSV_COUNTS:  # skills, stock, parts: NAME -> a whole number
            out[k] = {n: {sk: _whole(sv) for sk, sv in c.items()} if isinstance(c, dict) else _whole(c)
                      for n, c in v.items()}
        elif isinstance(v, dict):
            out[k] = _typed_cells(v) if k == "home" else v
        elif isinstance(v, str) and k in _CSV_BOOLS and v.lower() in ("true", "false", "yes", "no", "1", "0"):
            out[k] = v.lower() in ("true", "yes", "1")
        elif isinstance(v, str) and k in _CSV_NUMBERS and v:
            try:
                out[k] = int(v) if v.lstrip("+-").isdigit() else float(v)
            except ValueError:
                out[k] = v  # the model names the field
        else:
            out[k] = v
    return out


_CSV_NUMBERS = {"lat", "lon", "multiplier", "typical_value", "duration_minutes", "default_duration_minutes"}
_CSV_COUNTS = {"skills", "van_inventory", "parts"}


def _whole(v: Any) -> Any:
    """"3" -> 3; anything else as it is (the model names a bad one)."""
    return int(v) if isinstance(v, str) and v.strip().lstrip("+-").isdigit() else v
_CSV_BOOLS = {"active", "day_off"}


def _csv_rows(section: str, text: str) -> list[dict[str, Any]]:
    """One CSV file of ``section`` as document items (cells with ';'-separated NAME:VALUE pairs)."""
    items: list[dict[str, Any]] = []
    for n, raw in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        try:
            if section == "technicians":
                item: dict[str, Any] = {k: v for k, v in row.items() if k not in (
                    "home_lat", "home_lon", "skills", "certifications", "van_inventory", "shift_exceptions")}
                item["home"] = {"lat": row.pop("home_lat", None), "lon": row.pop("home_lon", None)}
                item["skills"] = _pairs(row.get("skills", ""), "skills")
                item["certifications"] = _pairs(row.get("certifications", ""), "certifications")
                item["van_inventory"] = _pairs(row.get("van_inventory", ""), "van_inventory")
                if row.get("shift_exceptions"):
                    item["shift_exceptions"] = [_exception_cell(p) for p in filter(
                        None, (x.strip() for x in row["shift_exceptions"].split(";")))]
                for k in ("shift_pattern", "email", "phone", "multiplier", "active"):
                    if item.get(k) == "":
                        item.pop(k)
            elif section == "customers":
                item = {k: v for k, v in row.items() if k not in (
                    "closed_hours", "preferred_technicians", "excluded_technicians")}
                item["closed_hours"] = _hours_cell(row.get("closed_hours", ""))
                for k in ("preferred_technicians", "excluded_technicians"):
                    item[k] = [x.strip() for x in row.get(k, "").split(";") if x.strip()]
            elif section == "job_types":
                item = {k: v for k, v in row.items() if not k.startswith("skills_") and k not in (
                    "certifications", "parts")}
                item["skills"] = {c: _pairs(row[f"skills_{c}"], f"skills_{c}")
                                  for c in ("low", "medium", "high") if row.get(f"skills_{c}")}
                item["certifications"] = [x.strip() for x in row.get("certifications", "").split(";") if x.strip()]
                item["parts"] = _pairs(row.get("parts", ""), "parts")
            else:
                raise ValueError(f"CSV holds one of {', '.join(CSV_SECTIONS)} (got {section!r})")
        except (ValueError, IndexError) as exc:
            raise CompanyImportError([f"{section}.csv line {n}: {exc}"]) from None
        items.append(_typed_cells(item))
    return items


def csv_section(path: Path, section: str | None = None) -> str:
    """The section a CSV file holds: given, or its name (``technicians.csv``, ``customers-2030.csv``)."""
    if section:
        return section
    for name in CSV_SECTIONS:
        if path.stem.lower().replace("-", "_").startswith(name):
            return name
    raise CompanyImportError([f"{path}: name the section with --section ({', '.join(CSV_SECTIONS)}) or call the "
                              f"file after it (technicians.csv)"])


def read_document(path: Path, *, section: str | None = None) -> dict[str, Any]:
    """A YAML (.yaml/.yml), JSON or CSV company file as a document.

    Raises
    ------
    CompanyImportError
        When the file is missing, does not parse, or is not a mapping.
    """
    if not path.exists():
        raise CompanyImportError([f"no such file: {path}"])
    text = path.read_text()
    if path.suffix.lower() == ".csv":
        name = csv_section(path, section)
        return {name: _csv_rows(name, text)}
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

    def __init__(self, doc: CompanyDocument, session: Session, prune: bool) -> None:
        self.doc, self.session, self.prune = doc, session, prune
        self.errors: list[str] = []
        self.techs = {t.name: t for t in session.exec(select(Technician)).all()}
        self.patterns = {p.name: p for p in session.exec(select(ShiftPattern)).all()}
        self.pattern_hours: dict[str, list[dict[str, Any]]] = {}
        self.closed: dict[str, list[dict[str, Any]]] = {}

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
        for key, names, known in (("technicians", d.remove.technicians, set(self.techs) | file_techs),
                                  ("shift_patterns", d.remove.shift_patterns, set(self.patterns))):
            for j, name in enumerate(names):
                if name not in known:
                    self.fail(f"remove.{key}[{j}]", f"unknown {key[:-1].replace('_', ' ')} {name!r}")
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
        for j, name in enumerate(d.remove.technicians):
            if name in file_techs:
                self.fail(f"remove.technicians[{j}]", f"{name!r} is both listed and removed")


# ---------------------------------------------------------------- writing


def _count(report: SyncReport, section: str, what: str) -> None:
    bucket = getattr(report, what)
    bucket[section] = bucket.get(section, 0) + 1


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
        _count(report, "operating_hours", "updated")


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


def sync(data: dict[str, Any], *, session: Session, prune: bool = False) -> SyncReport:
    """Validate the whole document, then make the database say what it says (in the caller's transaction).

    Raises
    ------
    CompanyImportError
        Naming every failing item with its path; nothing has been written.
    """
    doc = parse_document(data)
    plan = _Plan(doc, session, prune)
    plan.check()
    if plan.errors:
        raise CompanyImportError(plan.errors)
    report = SyncReport()

    for j in doc.job_types:
        row = session.exec(select(JobType).where(JobType.name == j.name)).first()
        _upsert(session, report, "job_types", row, JobType(name=j.name, default_duration_minutes=j.duration_minutes),
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
        customer = session.exec(select(Customer).where(Customer.ref == c.ref)).first()
        _upsert(session, report, "customers", customer, Customer(ref=c.ref, name=c.name, lat=c.lat, lon=c.lon),
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
            loaded = load_rules(rules, session=session)
        except CompanyImportError:
            raise
        except RulesConfigError as exc:  # the caller's transaction rolls back what was written above
            raise CompanyImportError(exc.errors) from None
        report.rules = {k: n for k, n in loaded.counts.items() if n}
    session.flush()
    return report


def _remove(doc: CompanyDocument, plan: _Plan, report: SyncReport) -> None:
    session = plan.session
    gone_techs = set(doc.remove.technicians)
    gone_types = set(doc.remove.job_types)
    gone_customers = set(doc.remove.customers)
    gone_patterns = set(doc.remove.shift_patterns)
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
        if tech is not None and tech.active:
            tech.active = False  # its assignments and history stay; it takes no more work
            session.add(tech)
            _count(report, "technicians", "removed")
    for name in sorted(gone_types):
        row = session.exec(select(JobType).where(JobType.name == name)).first()
        if row is not None:
            session.delete(row)
            _count(report, "job_types", "removed")
    for ref in sorted(gone_customers):
        gone = session.exec(select(Customer).where(Customer.ref == ref)).first()
        if gone is not None:
            session.delete(gone)
            _count(report, "customers", "removed")
    for name in sorted(gone_patterns):
        pat = plan.patterns.get(name)
        if pat is not None:  # unused: checked (remove) or selected so (prune)
            session.delete(pat)
            _count(report, "shift_patterns", "removed")
    session.flush()


def sync_file(path: Path, *, session: Session, prune: bool = False, section: str | None = None) -> SyncReport:
    """``read_document`` then ``sync``."""
    return sync(read_document(path, section=section), session=session, prune=prune)


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


def export_document(*, session: Session) -> dict[str, Any]:
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
             **({"max_radius_minutes": m.max_radius_minutes} if m.max_radius_minutes is not None else {})}
            for m in session.exec(select(TechnicianMembership).order_by(
                col(TechnicianMembership.technician_id), col(TechnicianMembership.effective_from))).all()]
    return doc


def _cell(pairs: dict[str, Any]) -> str:
    return "; ".join(f"{k}:{v}" for k, v in pairs.items())


def export_csv(section: str, *, session: Session) -> str:
    """One section as CSV (the columns ``read_document`` reads back)."""
    doc = export_document(session=session)
    out = io.StringIO()
    if section == "technicians":
        cols = ["name", "email", "phone", "home_lat", "home_lon", "skills", "certifications", "multiplier",
                "van_inventory", "shift_pattern", "shift_exceptions", "active"]
        w = csv.DictWriter(out, cols)
        w.writeheader()
        for t in doc["technicians"]:
            w.writerow({"name": t["name"], "email": t["email"], "phone": t["phone"], "home_lat": t["home"]["lat"],
                        "home_lon": t["home"]["lon"], "skills": _cell(t["skills"]),
                        "certifications": _cell(t["certifications"]), "multiplier": t["multiplier"],
                        "van_inventory": _cell(t["van_inventory"]), "shift_pattern": t.get("shift_pattern", ""),
                        "shift_exceptions": "; ".join(map(_exception_text, t.get("shift_exceptions", []))),
                        "active": str(t["active"]).lower()})
    elif section == "customers":
        cols = ["ref", "name", "email", "phone", "address", "lat", "lon", "notes", "closed_hours",
                "preferred_technicians", "excluded_technicians"]
        w = csv.DictWriter(out, cols)
        w.writeheader()
        for c in doc["customers"]:
            w.writerow({**{k: c[k] for k in cols[:8]},
                        "closed_hours": "; ".join(f"{h['days']} {h['start']}-{h['end']}" for h in c["closed_hours"]),
                        "preferred_technicians": "; ".join(c["preferred_technicians"]),
                        "excluded_technicians": "; ".join(c["excluded_technicians"])})
    elif section == "job_types":
        cols = ["name", "trade", "duration_minutes", "skills_low", "skills_medium", "skills_high", "certifications",
                "parts", "typical_value"]
        w = csv.DictWriter(out, cols)
        w.writeheader()
        for j in doc["job_types"]:
            w.writerow({"name": j["name"], "trade": j["trade"], "duration_minutes": j["duration_minutes"],
                        **{f"skills_{c}": _cell(j["skills"].get(c, {})) for c in ("low", "medium", "high")},
                        "certifications": "; ".join(j["certifications"]), "parts": _cell(j["parts"]),
                        "typical_value": j["typical_value"]})
    else:
        raise CompanyImportError([f"CSV holds one of {', '.join(CSV_SECTIONS)} (got {section!r})"])
    return out.getvalue()


__all__ = ["CompanyImportError", "CustomerIn", "ShiftPatternIn", "apply_customer", "customer_for_request",
           "export_csv", "export_document", "read_document", "sync", "sync_file"]
