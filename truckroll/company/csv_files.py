"""The company document as CSV: one file per section (``technicians.csv``, ``memberships.csv``, ...), alone, in
a folder or in a zip. Cells are typed here (numbers, whole numbers, flags, dates, date-times, ``NAME:VALUE``
pairs, ``;`` lists, weekly hours, GeoJSON), so a bad cell is refused naming its file, row and column, and the
document that comes out is the one YAML would give (``truckroll.company.sync`` validates and syncs it).

A row whose ``remove`` column is true removes the item its key columns name (``remove:`` of the document).
The columns are ``CSV_COLUMNS``; docs/company-setup.md lists them.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from truckroll.rules.config import RulesConfigError


@dataclass(frozen=True)
class Col:
    """One CSV column: where its value sits in the section's item, and how its cell is typed."""

    name: str
    path: tuple[str, ...]
    kind: str = "text"


def _c(name: str, kind: str = "text", path: tuple[str, ...] | None = None) -> Col:
    return Col(name, path or (name,), kind)


def _point(prefix: str) -> list[Col]:
    """``home_lat``, ``home_lon`` -> ``home: {lat, lon}``."""
    return [Col(f"{prefix}_lat", (prefix, "lat"), "number"), Col(f"{prefix}_lon", (prefix, "lon"), "number")]


CSV_COLUMNS: dict[str, list[Col]] = {
    "job_types": [_c("name"), _c("trade"), _c("duration_minutes", "int"),
                  *(Col(f"skills_{c}", ("skills", c), "counts") for c in ("low", "medium", "high")),
                  _c("certifications", "list"), _c("parts", "counts"), _c("typical_value", "number")],
    "shift_patterns": [_c("name"), _c("hours", "hours")],
    "technicians": [_c("name"), _c("email"), _c("phone"), *_point("home"), _c("skills", "counts"),
                    _c("certifications", "dates"), _c("multiplier", "number"), _c("van_inventory", "counts"),
                    _c("shift_pattern"), _c("shift_exceptions", "exceptions"), _c("active", "bool")],
    "customers": [_c("ref"), _c("name"), _c("email"), _c("phone"), _c("address"), _c("lat", "number"),
                  _c("lon", "number"), _c("notes"), _c("closed_hours", "hours"),
                  _c("preferred_technicians", "list"), _c("excluded_technicians", "list")],
    "territories": [_c("name"), _c("timezone"), _c("parent"), _c("geojson", "json"),
                    _c("visiting_hours", "hours")],
    "memberships": [_c("technician"), _c("territory"), _c("kind"), _c("from", "date"), _c("until", "date"),
                    _c("max_radius_km", "number"), _c("max_radius_minutes", "number"), *_point("home"),
                    *_point("radius_centre")],
    "shifts": [_c("technician"), _c("start", "datetime"), _c("end", "datetime"), _c("kind"),
               _c("max_priority", "int"), _c("all_territories", "bool")],
    "operating_hours": [_c("technician"), _c("hours", "hours")],
    "absences": [_c("technician"), _c("start", "datetime"), _c("end", "datetime"), _c("reason")],
    "scheduling_policies": [_c("territory"), _c("boundaries", "modes")],
    "travel_policies": [_c("technician"), _c("start_at"), _c("end_at"), *_point("depot"), _c("outbound"),
                        _c("outbound_own_minutes", "number"), _c("inbound"), _c("inbound_own_minutes", "number"),
                        _c("max_radius_km", "number"), _c("max_radius_minutes", "number")],
}
CSV_SECTIONS = tuple(CSV_COLUMNS)
# Where a section's items sit in the document (the policies are one section of two lists).
DOC_PATH: dict[str, tuple[str, ...]] = {s: (s,) for s in CSV_SECTIONS} | {
    "scheduling_policies": ("policies", "scheduling"), "travel_policies": ("policies", "travel")}


def _name_of(item: dict[str, Any], key: str) -> Any:
    return item.get(key)


def _subset(*keys: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda item: {k: item[k] for k in keys if k in item}


# A removal row: where its key goes in ``remove`` and what the key is.
REMOVE_KEY: dict[str, tuple[tuple[str, ...], Callable[[dict[str, Any]], Any]]] = {
    "job_types": (("job_types",), lambda i: _name_of(i, "name")),
    "shift_patterns": (("shift_patterns",), lambda i: _name_of(i, "name")),
    "technicians": (("technicians",), lambda i: _name_of(i, "name")),
    "customers": (("customers",), lambda i: _name_of(i, "ref")),
    "territories": (("territories",), lambda i: _name_of(i, "name")),
    "memberships": (("memberships",), _subset("technician", "territory", "kind", "from")),
    "shifts": (("shifts",), _subset("technician", "start", "end")),
    "operating_hours": (("operating_hours",), lambda i: _name_of(i, "technician")),
    "absences": (("absences",), _subset("technician", "start", "end")),
    "scheduling_policies": (("policies", "scheduling"), _subset("territory")),
    "travel_policies": (("policies", "travel"), _subset("technician")),
}
TRUE, FALSE = ("true", "yes", "1"), ("false", "no", "0")


# ---------------------------------------------------------------- cells -> values (raise ValueError)


def _split(text: str) -> list[str]:
    return [p.strip() for p in text.split(";") if p.strip()]


def _pairs(text: str) -> dict[str, str]:
    """"plumbing:3; hvac:2" -> {"plumbing": "3", "hvac": "2"}."""
    out: dict[str, str] = {}
    for part in _split(text):
        key, sep, value = part.partition(":")
        if not sep or not key.strip():
            raise ValueError(f"{part!r} must be NAME:VALUE")
        out[key.strip()] = value.strip()
    return out


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date YYYY-MM-DD") from None


def _datetime(text: str) -> datetime:
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date-time (2030-01-07T08:00:00-06:00)") from None
    if dt.tzinfo is None:
        raise ValueError(f"{text!r} needs a timezone offset (2030-01-07T08:00:00-06:00)")
    return dt


def _hours(text: str) -> list[dict[str, Any]]:
    """"mon 12:00-13:00; sat,sun 08:00-12:00" -> hours items."""
    out = []
    for part in _split(text):
        days, _, span = part.partition(" ")
        start, sep, end = span.strip().partition("-")
        if not sep or not start or not end:
            raise ValueError(f"{part!r} must be DAYS HH:MM-HH:MM (mon 08:00-12:00; weekdays 08:00-17:00)")
        names = [d.strip() for d in days.split(",") if d.strip()]
        out.append({"days": names[0] if len(names) == 1 else names, "start": start.strip(), "end": end.strip()})
    return out


def _exception(text: str) -> dict[str, Any]:
    """"2030-01-08 off = training" or "2030-01-09 10:00-14:00" -> a shift exception item."""
    day, _, rest = text.partition(" ")
    hours, _, reason = (rest or "off").partition("=")
    hours = hours.strip()
    item: dict[str, Any] = {"date": _date(day.strip()), "reason": reason.strip()}
    if hours == "off":
        return item | {"day_off": True}
    start, sep, end = hours.partition("-")
    if not sep:
        raise ValueError(f"{text!r} must be 'DATE off' or 'DATE HH:MM-HH:MM' (then '= reason')")
    return item | {"start": start.strip(), "end": end.strip()}


def _modes(text: str) -> Any:
    """"hard; hard; hard; hard; hard; soft; soft" (mon..sun) or "weekdays:hard; weekends:soft" or "hard"."""
    if ":" in text:
        return _pairs(text)
    modes = _split(text)
    return modes[0] if len(modes) == 1 else modes


def _bool(text: str) -> bool:
    if text.lower() in TRUE:
        return True
    if text.lower() in FALSE:
        return False
    raise ValueError(f"{text!r} is not true or false")


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at character {exc.pos})") from None


READ: dict[str, Callable[[str], Any]] = {
    "text": str, "number": _number, "int": _whole, "bool": _bool, "date": _date, "datetime": _datetime,
    "list": _split, "counts": lambda t: {k: _whole(v) for k, v in _pairs(t).items()},
    "dates": lambda t: {k: _date(v) for k, v in _pairs(t).items()}, "hours": _hours,
    "exceptions": lambda t: [_exception(p) for p in _split(t)], "json": _json, "modes": _modes,
}


# ---------------------------------------------------------------- values -> cells


def _hours_text(items: list[dict[str, Any]]) -> str:
    return "; ".join(f"{','.join(h['days']) if isinstance(h['days'], list) else h['days']} {h['start']}-{h['end']}"
                     for h in items)


def _exception_text(e: dict[str, Any]) -> str:
    text = f"{e['date']} off" if e.get("day_off") else f"{e['date']} {e['start']}-{e['end']}"
    return f"{text} = {e['reason']}" if e.get("reason") else text


def _pairs_text(pairs: dict[str, Any]) -> str:
    return "; ".join(f"{k}:{v}" for k, v in pairs.items())


WRITE: dict[str, Callable[[Any], str]] = {
    "bool": lambda v: str(bool(v)).lower(), "list": lambda v: "; ".join(map(str, v)), "counts": _pairs_text,
    "dates": _pairs_text, "hours": _hours_text, "exceptions": lambda v: "; ".join(map(_exception_text, v)),
    "json": lambda v: json.dumps(v, separators=(",", ":")),
    "modes": lambda v: _pairs_text(v) if isinstance(v, dict) else v if isinstance(v, str) else "; ".join(v),
}


# ---------------------------------------------------------------- reading


def section_of(name: str) -> str | None:
    """The section a file name holds (``technicians.csv``, ``customers-2030.csv``), or None."""
    stem = Path(name).stem.lower().replace("-", "_")
    for section in sorted(CSV_SECTIONS, key=len, reverse=True):
        if stem == section or stem.startswith(section + "_"):
            return section
    return None


def _put(item: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        item = item.setdefault(key, {})
    item[path[-1]] = value


def _get(item: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(item, dict) or key not in item:
            return None
        item = item[key]
    return item


class CsvDocument:
    """Sections read from CSV files, with where each item came from (file and row) for error messages."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.origin: dict[str, list[tuple[str, int]]] = {}
        self.errors: list[str] = []

    def _append(self, doc_path: tuple[str, ...], value: Any, where: tuple[str, int]) -> None:
        target = self.data
        for key in doc_path[:-1]:
            target = target.setdefault(key, {})
        target.setdefault(doc_path[-1], []).append(value)
        self.origin.setdefault(".".join(doc_path), []).append(where)

    def add(self, section: str, file: str, text: str) -> None:
        """Read one section's CSV text (``file`` names it in errors)."""
        cols = {c.name: c for c in CSV_COLUMNS[section]}
        reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
        header = [h.strip() for h in reader.fieldnames or []]
        for h in header:
            if h not in cols and h != "remove":
                self.errors.append(f"{file} column {h!r}: unknown column (allowed: {', '.join(cols)}, remove)")
        if not header:
            self.errors.append(f"{file}: no header row (columns: {', '.join(cols)})")
        doc_path = DOC_PATH[section]
        # Known sections present even when empty (a header only): the section is listed, with no items.
        target = self.data
        for key in doc_path[:-1]:
            target = target.setdefault(key, {})
        target.setdefault(doc_path[-1], [])
        for raw in reader:
            row_no = reader.line_num
            if None in raw:
                self.errors.append(f"{file} row {row_no}: more cells than columns")
                continue
            cells = {(k or "").strip(): (v if isinstance(v, str) else "").strip() for k, v in raw.items()}
            item: dict[str, Any] = {}
            remove = False
            for name, text in cells.items():
                if not text:
                    continue
                try:
                    if name == "remove":
                        remove = _bool(text)
                    elif name in cols:
                        _put(item, cols[name].path, READ[cols[name].kind](text))
                except ValueError as exc:
                    self.errors.append(f"{file} row {row_no} column {name}: {exc}")
            if remove:
                remove_path, key_of = REMOVE_KEY[section]
                self._append(("remove", *remove_path), key_of(item), (file, row_no))
            else:
                self._append(doc_path, item, (file, row_no))


def read_csv_files(path: Path, section: str | None = None) -> CsvDocument:
    """One CSV file (its section given or in its name), a folder of them, or a zip of them.

    Raises
    ------
    RulesConfigError
        Naming every bad file, row and column.
    """
    doc = CsvDocument()
    files: list[tuple[str, str]] = []
    try:
        if path.is_dir():
            files = [(p.name, p.read_text(encoding="utf-8-sig")) for p in sorted(path.iterdir())
                     if p.suffix.lower() == ".csv"]
        elif path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as z:
                files = [(n, z.read(n).decode("utf-8-sig")) for n in sorted(z.namelist())
                         if n.lower().endswith(".csv") and not n.startswith("__MACOSX")]
        else:
            files = [(path.name, path.read_text(encoding="utf-8-sig"))]
    except (OSError, zipfile.BadZipFile, UnicodeDecodeError) as exc:
        raise RulesConfigError([f"{path}: cannot read ({exc})"]) from None
    if not files:
        raise RulesConfigError([f"{path}: no CSV files ({', '.join(s + '.csv' for s in CSV_SECTIONS)})"])
    seen: dict[str, str] = {}
    for name, text in files:
        sec = section if section and len(files) == 1 else section_of(name)
        if sec is None or sec not in CSV_COLUMNS:
            doc.errors.append(f"{name}: name the section with --section or call the file after it "
                              f"({', '.join(s + '.csv' for s in CSV_SECTIONS)})")
            continue
        if sec in seen:
            doc.errors.append(f"{name}: a second file for {sec} (after {seen[sec]})")
            continue
        seen[sec] = name
        doc.add(sec, name, text)
    if doc.errors:
        raise RulesConfigError(doc.errors)
    return doc


# ---------------------------------------------------------------- writing


def section_csv(section: str, document: dict[str, Any]) -> str:
    """One section of a document as CSV text (the columns ``CsvDocument.add`` reads back)."""
    if section not in CSV_COLUMNS:
        raise RulesConfigError([f"CSV holds one of {', '.join(CSV_SECTIONS)} (got {section!r})"])
    cols = CSV_COLUMNS[section]
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow([c.name for c in cols])
    for item in _get(document, DOC_PATH[section]) or []:
        row = []
        for c in cols:
            v = _get(item, c.path)
            row.append("" if v is None else WRITE.get(c.kind, str)(v))
        w.writerow(row)
    return out.getvalue()


def write_csv_files(document: dict[str, Any], target: Path) -> list[str]:
    """Every section as ``SECTION.csv`` into a folder (created) or a ``.zip``; returns the file names."""
    names = [f"{s}.csv" for s in CSV_SECTIONS]
    texts = [section_csv(s, document) for s in CSV_SECTIONS]
    if target.suffix.lower() == ".zip":
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
            for n, t in zip(names, texts, strict=True):
                z.writestr(n, t)
    else:
        target.mkdir(parents=True, exist_ok=True)
        for n, t in zip(names, texts, strict=True):
            (target / n).write_text(t)
    return names


__all__ = ["CSV_COLUMNS", "CSV_SECTIONS", "CsvDocument", "read_csv_files", "section_csv", "section_of",
           "write_csv_files"]
