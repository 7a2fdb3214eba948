"""The sample company and a day of requests, generated from a seed (Dallas-Fort Worth, America/Chicago)."""

from __future__ import annotations

import functools
import logging
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from demo.scenario import working_days
from models import JobType, Shift, Technician

log = logging.getLogger(__name__)

RULES_FILE = Path(__file__).parent / "data" / "demo_rules.yaml"
# Where the demo's two city areas meet (see RULES_FILE).
CITY_LINE_LON = -96.87
RURAL_LAT = 33.0

TZ = "America/Chicago"
CENTRE = (32.85, -96.85)  # Dallas-Fort Worth
SPREAD_KM = 22.0

# name, trade, minutes, {complexity: {skill: level}}, certifications, parts, typical value, share of demand
CATALOGUE: list[tuple[str, str, int, dict[str, dict[str, int]], list[str], dict[str, int], float, float]] = [
    ("water heater repair", "plumbing", 90, {"low": {"plumbing": 2}, "medium": {"plumbing": 3},
                                             "high": {"plumbing": 4}}, ["gas"], {"thermocouple": 1}, 420, 0.08),
    ("drain cleaning", "plumbing", 60, {"low": {"plumbing": 1}, "medium": {"plumbing": 2},
                                        "high": {"plumbing": 3}}, [], {}, 210, 0.12),
    ("leak repair", "plumbing", 75, {"low": {"plumbing": 2}, "medium": {"plumbing": 3},
                                     "high": {"plumbing": 4}}, [], {"pipe fitting kit": 1}, 300, 0.10),
    ("toilet install", "plumbing", 90, {"low": {"plumbing": 1}, "medium": {"plumbing": 2},
                                        "high": {"plumbing": 3}}, [], {"wax ring": 1}, 380, 0.05),
    ("ac repair", "hvac", 90, {"low": {"hvac": 2}, "medium": {"hvac": 3}, "high": {"hvac": 4}},
     ["epa608"], {"capacitor": 1}, 520, 0.13),
    ("furnace repair", "hvac", 90, {"low": {"hvac": 2}, "medium": {"hvac": 3}, "high": {"hvac": 4}},
     ["gas"], {"igniter": 1}, 460, 0.08),
    ("hvac maintenance", "hvac", 60, {"low": {"hvac": 1}, "medium": {"hvac": 2}, "high": {"hvac": 3}},
     [], {"air filter": 1}, 160, 0.10),
    ("panel upgrade", "electrical", 180, {"low": {"electrical": 3}, "medium": {"electrical": 4},
                                          "high": {"electrical": 5}}, ["electrical license"], {}, 1800, 0.03),
    ("outlet repair", "electrical", 45, {"low": {"electrical": 1}, "medium": {"electrical": 2},
                                         "high": {"electrical": 3}}, [], {"gfci outlet": 1}, 190, 0.09),
    ("lighting install", "electrical", 90, {"low": {"electrical": 2}, "medium": {"electrical": 2},
                                            "high": {"electrical": 3}}, [], {}, 320, 0.06),
    ("washer repair", "appliance", 60, {"low": {"appliance": 1}, "medium": {"appliance": 2},
                                        "high": {"appliance": 3}}, [], {"drain pump": 1}, 230, 0.08),
    ("refrigerator repair", "appliance", 75, {"low": {"appliance": 2}, "medium": {"appliance": 3},
                                              "high": {"appliance": 4}}, ["epa608"], {}, 340, 0.08),
]
TRADE_CERTS = {"plumbing": ["gas"], "hvac": ["epa608", "gas"], "electrical": ["electrical license"],
               "appliance": ["epa608"]}
# Interleaved, so that any first N technicians cover every trade (25: 8 plumbing, 7 hvac, 5 + 5).
TRADE_MIX = ["plumbing", "hvac", "electrical", "appliance", "plumbing", "hvac", "plumbing", "hvac", "electrical",
             "appliance"] * 3
FIRST = ["Ana", "Ben", "Carla", "Dev", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jo", "Kofi", "Lena", "Marco",
         "Nia", "Omar", "Pia", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Vic", "Wes", "Xena", "Yusuf", "Zoe"]
LAST = ["Alvarez", "Brooks", "Chen", "Diaz", "Evans", "Foster", "Garcia", "Hughes", "Ito", "Jones", "Khan", "Lopez",
        "Moore", "Nguyen", "Ortiz", "Patel", "Reyes", "Smith", "Tran", "Usman", "Vega", "White", "Young", "Zhang"]
STREETS = ["Elm St", "Main St", "Oak Lawn Ave", "Greenville Ave", "Preston Rd", "Mockingbird Ln", "Lovers Ln",
           "Forest Ln", "Belt Line Rd", "Ross Ave", "Gaston Ave", "Inwood Rd", "Royal Ln", "Walnut Hill Ln"]


def _point(rng: random.Random, spread_km: float = SPREAD_KM) -> tuple[float, float]:
    r = spread_km * rng.random() ** 0.5
    a = rng.uniform(0, 6.283185307)
    import math

    return (round(CENTRE[0] + r * math.sin(a) / 111.0, 6),
            round(CENTRE[1] + r * math.cos(a) / (111.0 * math.cos(math.radians(CENTRE[0]))), 6))


def next_service_day(today: date | None = None) -> date:
    """The next weekday after today in the company's time zone: a full working day, whose windows are always
    in the future (the weekend has only the on-call emergency cover of the demo rules)."""
    day = (today or datetime.now(ZoneInfo(TZ)).date()) + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


# Shift start hours of the demo's technicians, in turn (9-hour shifts).
START_HOURS = (8, 8, 8, 7, 10)


def seed_company(session: Session, day: date, *, technicians: int = 25, seed: int = 7,
                 rules: bool = False, weeks: int = 0) -> list[Technician]:
    """The catalogue, ``technicians`` technicians with skills, certifications and vans, and their shifts on ``day``
    (with ``weeks``: on every working day of the ``weeks`` weeks from ``day`` on, as a real roster has).

    One technician's gas certification expired the day before ``day``. With ``rules`` (``truckroll demo``) the
    dispatch rules of ``seed_rules`` too; at weekends the last technician is then on call (emergencies only,
    every territory) and every third of the others is off. Without them (tests, benchmarks) every technician
    works ``day`` anywhere, as before.
    """
    rng = random.Random(seed)
    tz = ZoneInfo(TZ)
    for name, trade, minutes, levels, certs, parts, value, _ in CATALOGUE:
        session.add(JobType(name=name, trade=trade, default_duration_minutes=minutes,
                            skill_levels_by_complexity=levels, required_certifications=certs,
                            typical_parts=parts, typical_value=value))
    techs = []
    for i in range(technicians):
        trade = TRADE_MIX[i % len(TRADE_MIX)]
        skills = {trade: rng.choice([3, 4, 4, 5, 5])}
        if rng.random() < 0.35:
            other = rng.choice([t for t in TRADE_CERTS if t != trade])
            skills[other] = rng.choice([1, 2, 3])
        held: dict[str, str] = {}
        for c in TRADE_CERTS[trade]:
            # With the rules (the demo), a licensed trade's technicians all hold its certifications, as a
            # real company's do; without them (tests, benchmarks) 15% lack one, as before.
            if rng.random() < 0.85 or rules:
                held[c] = (day + timedelta(days=rng.randint(60, 700))).isoformat()
        if i == 3:  # the expired permit of the demo
            held["gas"] = (day - timedelta(days=1)).isoformat()
        inventory = {p: rng.randint(0, 3) for _, t, _, _, _, parts, _, _ in CATALOGUE if t == trade for p in parts}
        lat, lon = _point(rng, 25.0)
        first, last = FIRST[i % len(FIRST)], LAST[(i * 7) % len(LAST)]
        tech = Technician(name=f"{first} {last}", phone=f"+1-214-555-{1000 + i:04d}",
                          email=f"{first.lower()}.{last.lower()}@example.com", home_lat=lat, home_lon=lon,
                          skills=skills, certifications=held, upsell_multiplier=round(rng.uniform(0.9, 1.3), 2),
                          van_inventory=inventory)
        session.add(tech)
        techs.append(tech)
    session.flush()
    weekend = day.weekday() >= 5
    roster = [day] + [d for d in working_days(day, 5 * weeks) if d != day]
    for i, tech in enumerate(techs):
        if rules and weekend and (i == len(techs) - 1 or i % 3 == 2):
            continue  # the weekend crew; the on-call shift comes with the rules
        start_h = START_HOURS[i % len(START_HOURS)]
        assert tech.id is not None  # flushed above
        for d in roster:
            start = datetime.combine(d, time(start_h), tzinfo=tz)
            session.add(Shift(technician_id=tech.id, start=start, end=start + timedelta(hours=9)))
    session.flush()
    if rules:
        seed_rules(session, day, techs)
    return techs


def _city(tech: Technician) -> str:
    return "Dallas" if tech.home_lon >= CITY_LINE_LON else "Irving"


def seed_rules(session: Session, day: date, techs: list[Technician]) -> None:
    """The demo's dispatch rules, through the rules loader: territories and policies from ``RULES_FILE``; each
    technician's primary city area by home (rebalanced so each trade has someone in each area), the other
    area as a secondary for everyone, the rural area as a secondary for those living nearest it (within
    40 km); a relocation (index 18) around ``day``; an absence (index 14) on ``day``; and the last technician
    on call at weekends (priority 1-2 only, every territory).
    """
    from truckroll.rules.config import load_rules, read_file

    tz = ZoneInfo(TZ)
    primary = {t.id: _city(t) for t in techs}
    trade = {t.id: next(iter(t.skills)) for t in techs}
    for tr in sorted(set(trade.values())):
        for area, other in (("Dallas", "Irving"), ("Irving", "Dallas")):
            mine = [t for t in techs if trade[t.id] == tr and primary[t.id] == area]
            theirs = [t for t in techs if trade[t.id] == tr and primary[t.id] == other]
            if not mine and len(theirs) > 1:
                closest = min(theirs, key=lambda t: abs(t.home_lon - CITY_LINE_LON))
                primary[closest.id] = area
    since = (day - timedelta(days=365)).isoformat()
    memberships: list[dict[str, Any]] = []
    for t in techs:
        memberships.append({"technician": t.name, "territory": primary[t.id], "kind": "primary", "from": since})
        # The two city areas are neighbours: every technician may cross the line when nobody on the other
        # side can take a job (weekdays "hard, then soft": recorded as a relaxation).
        other = "Irving" if primary[t.id] == "Dallas" else "Dallas"
        memberships.append({"technician": t.name, "territory": other, "kind": "secondary", "from": since})
        if t.home_lat >= RURAL_LAT - 0.1:
            memberships.append({"technician": t.name, "territory": "Denton County rural", "kind": "secondary",
                                "from": since, "max_radius_km": 40})
    dated: dict[str, Any] = {"memberships": memberships, "shifts": [], "absences": []}
    if len(techs) > 18:
        t = techs[18]
        away = "Dallas" if primary[t.id] == "Irving" else "Irving"
        memberships.append({"technician": t.name, "territory": away, "kind": "relocation",
                            "from": (day - timedelta(days=1)).isoformat(),
                            "until": (day + timedelta(days=1)).isoformat()})
    if len(techs) > 14:
        t = techs[14]
        dated["absences"].append({"technician": t.name, "reason": "training",
                                  "start": datetime.combine(day, time(0), tzinfo=tz).isoformat(),
                                  "end": datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).isoformat()})
    on_call = techs[-1]
    saturday = day + timedelta(days=(5 - day.weekday()) % 7) if day.weekday() != 6 else day - timedelta(days=1)
    for d in (saturday, saturday + timedelta(days=1)):
        dated["shifts"].append({"technician": on_call.name, "kind": "on_call", "max_priority": 2,
                                "all_territories": True,
                                "start": datetime.combine(d, time(7), tzinfo=tz).isoformat(),
                                "end": datetime.combine(d, time(21), tzinfo=tz).isoformat()})
    load_rules(read_file(RULES_FILE), session=session, tz=TZ)
    load_rules(dated, session=session, tz=TZ)
    seed_shift_patterns(session, techs)


def seed_shift_patterns(session: Session, techs: list[Technician]) -> None:
    """Each technician's weekday hours as a weekly shift pattern (truckroll.company.sync), the same hours as their
    shift on the demo day: requests for the following weekdays find them on shift too."""
    from truckroll.company.sync import sync

    hours = {i: START_HOURS[i % len(START_HOURS)] for i in range(len(techs))}
    name = {h: f"weekdays {h:02d}:00-{h + 9:02d}:00" for h in set(hours.values())}
    sync({"shift_patterns": [{"name": n, "hours": [{"days": "weekdays", "start": f"{h:02d}:00",
                                                     "end": f"{h + 9:02d}:00"}]} for h, n in sorted(name.items())],
          "technicians": [{"name": t.name, "email": t.email, "phone": t.phone,
                           "home": {"lat": t.home_lat, "lon": t.home_lon}, "skills": t.skills,
                           "certifications": t.certifications, "multiplier": t.upsell_multiplier,
                           "van_inventory": t.van_inventory, "shift_pattern": name[hours[i]]}
                          for i, t in enumerate(techs)]}, session=session, tz=TZ)


@dataclass
class DemoRequest:
    arrives_at: datetime
    payload: dict[str, Any]


WINDOWS = [((8, 0), (12, 0)), ((10, 0), (14, 0)), ((12, 0), (17, 0)), ((8, 0), (17, 0)), ((13, 0), (18, 0))]


def generate_requests(day: date, n: int = 180, *, seed: int = 11) -> list[DemoRequest]:
    """``n`` requests for ``day``, arriving over the afternoon and evening before and the early morning."""
    rng = random.Random(seed)
    tz = ZoneInfo(TZ)
    shares = [c[7] for c in CATALOGUE]
    opens = datetime.combine(day - timedelta(days=1), time(12), tzinfo=tz)
    out = []
    for i in range(n):
        name, trade, minutes, levels, certs, parts, value, _ = rng.choices(CATALOGUE, weights=shares)[0]
        emergency = rng.random() < 0.07
        priority = rng.choice([1, 2]) if emergency else rng.choice([3, 4, 5, 5, 6, 7, 8, 9, 10])
        if emergency:
            windows = [((8, 0), (14, 0))]
        elif rng.random() < 0.2:
            windows = rng.sample(WINDOWS[:3], 2)
        else:
            windows = [rng.choice(WINDOWS)]
        arrives = opens + timedelta(minutes=i * (19 * 60) / n)
        out.append(DemoRequest(arrives, _payload(rng, i, name, priority, value, [(day, a, b) for a, b in windows],
                                                 tz)))
    return out


def _payload(rng: random.Random, i: int, name: str, priority: int, value: float,
             spans: list[tuple[date, tuple[int, int], tuple[int, int]]], tz: ZoneInfo,
             at: tuple[float, float] | None = None) -> dict[str, Any]:
    """One customer's request (the i-th of the stream) for job type ``name`` in the windows ``spans``
    ((day, (h, m), (h, m)), ...), at ``at`` (lat, lon) or a random place of the metro."""
    lat, lon = at if at is not None else _point(rng)
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return {
        "customer_name": f"{first} {last}",
        "customer_phone": f"+1-469-555-{rng.randint(0, 9999):04d}",
        "customer_email": f"{first.lower()}.{last.lower()}{i}@example.net",
        "address": f"{rng.randint(100, 9999)} {rng.choice(STREETS)}, Dallas, TX",
        "lat": lat, "lon": lon, "job_type": name,
        "complexity": rng.choices(["low", "medium", "high"], weights=[3, 5, 2])[0],
        "description": f"{name} requested through the {'call centre' if i % 3 == 0 else 'portal'}",
        "priority": priority,
        "estimated_value": round(value * rng.lognormvariate(0, 0.35), 2),
        "time_windows": [{"start": datetime.combine(d, time(*a), tzinfo=tz).isoformat(),
                          "end": datetime.combine(d, time(*b), tzinfo=tz).isoformat()} for d, a, b in spans],
        "channel": "call_centre" if i % 3 == 0 else "portal",
    }


def is_empty(session: Session) -> bool:
    return session.exec(select(Technician.id)).first() is None


# ------------------------------------------------------------------------------------------ the demo's stream

# Demand of a home-services company by season (share multipliers of CATALOGUE): heating work in the cold
# months, cooling work in the hot ones; plumbing and electrical steady.
SEASON = {
    "winter": {"furnace repair": 2.5, "ac repair": 0.3, "water heater repair": 1.5, "hvac maintenance": 0.8},
    "summer": {"ac repair": 2.5, "furnace repair": 0.2, "hvac maintenance": 1.3},
    "shoulder": {"hvac maintenance": 1.8},
}
# A residential technician's 4-6 visits a day. The demo's 9-hour shifts at the 85% utilisation target hold
# about 4.4 visits of the winter mix (80 minutes a job plus a 25-30 minute drive); a company books about 90%
# of that ahead, keeping room for the morning's emergencies: 4 requests per technician a day.
JOBS_PER_TECHNICIAN_DAY = 4.0


def season_of(day: date) -> str:
    return "winter" if day.month in (11, 12, 1, 2) else "summer" if day.month in (6, 7, 8, 9) else "shoulder"


def season_shares(day: date) -> list[float]:
    """CATALOGUE's demand shares for ``day``'s season, normalised."""
    mult = SEASON[season_of(day)]
    raw = [c[7] * mult.get(c[0], 1.0) for c in CATALOGUE]
    total = sum(raw)
    return [r / total for r in raw]


@functools.cache
def _visiting_hours_by_weekday() -> tuple[tuple[tuple[int, int], tuple[int, int]] | None, ...]:
    """``RULES_FILE``'s visiting hours per weekday (Monday first), read once: the stream asks for every request."""
    from truckroll.rules.config import read_file

    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    found: list[tuple[tuple[int, int], tuple[int, int]] | None] = [None] * 7
    for territory in read_file(RULES_FILE).get("territories", []):
        for h in territory.get("visiting_hours", []):
            for i, name in enumerate(names):
                if name in h["days"] and found[i] is None:
                    a, b = (tuple(int(x) for x in str(h[k]).split(":")) for k in ("start", "end"))
                    found[i] = ((a[0], a[1]), (b[0], b[1]))
    return tuple(found)


def rural_visiting_hours(day: date) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """The rural area's visiting hours on ``day`` ((h, m), (h, m)) from ``RULES_FILE``, None when it is not
    visited that day."""
    return _visiting_hours_by_weekday()[day.weekday()]


def _customer_place(rng: random.Random, day: date) -> tuple[tuple[float, float], tuple[tuple[int, int],
                                                                                         tuple[int, int]] | None]:
    """Where a customer booking for ``day`` lives, and the rural visiting hours that bind their windows (None
    in the cities). The booking offers rural customers only the days and hours the company visits them, so a
    rural customer books for ``day`` only when it is a visiting day."""
    hours = rural_visiting_hours(day)
    while True:
        at = _point(rng)
        if at[0] < RURAL_LAT:
            return at, None
        if hours is not None:
            return at, hours


def generate_stream(days: list[date], per_day: int, *, seed: int = 11) -> list[DemoRequest]:
    """The requests of several working days as they arrive, in arrival order.

    Requests for a day arrive over the three days before it (office hours, then the evening before and the
    early morning); most ask for one window on that day, some for a window on each of two days ("tomorrow or
    the day after"), some for any time over three days, and emergencies (7%) arrive on the morning itself
    for that day. The trade mix follows the season (``season_shares``). Customers in the rural area (visited
    on set days only, ``rural_visiting_hours``) book those days and hours, as the booking offers them.
    """
    rng = random.Random(seed)
    tz = ZoneInfo(TZ)
    out: list[DemoRequest] = []
    i = 0
    for n_day, day in enumerate(days):
        shares = season_shares(day)
        later = days[n_day + 1:n_day + 3]
        for _ in range(per_day):
            name, trade, minutes, levels, certs, parts, value, _ = rng.choices(CATALOGUE, weights=shares)[0]
            emergency = rng.random() < 0.07
            priority = rng.choice([1, 2]) if emergency else rng.choice([3, 4, 5, 5, 6, 7, 8, 9, 10])
            kind = rng.random()
            at, rural = _customer_place(rng, day)
            if emergency:
                spans = [(day, (8, 0), (14, 0))]
                arrives = datetime.combine(day, time(6), tzinfo=tz) + timedelta(minutes=rng.uniform(0, 90))
            else:
                if kind < 0.2 and later:
                    a, b = rng.choice(WINDOWS[:3])
                    spans = [(day, a, b), (later[0], a, b)]
                elif kind < 0.3 and later:
                    spans = [(d, (8, 0), (17, 0)) for d in [day, *later]]
                elif kind < 0.45:
                    spans = [(day, a, b) for a, b in rng.sample(WINDOWS[:3], 2)]
                else:
                    a, b = rng.choice(WINDOWS)
                    spans = [(day, a, b)]
                arrives = datetime.combine(day - timedelta(days=rng.choice([1, 1, 2, 3])),
                                           time(rng.randint(8, 20)), tzinfo=tz) + timedelta(minutes=rng.uniform(0, 59))
                arrives = min(arrives, datetime.combine(day, time(7), tzinfo=tz))
            if rural is not None:
                spans = [(day, *rural)]  # the booking offers the visiting hours only
            out.append(DemoRequest(arrives, _payload(rng, i, name, priority, value, spans, tz, at)))
            i += 1
    return sorted(out, key=lambda r: r.arrives_at)
