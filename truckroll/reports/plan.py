"""Pictures of a day's plan: a map of every technician's route and a timeline (Gantt) per technician.

The page is one self-contained HTML file that renders without internet: the map is an inline SVG (routes as
polylines over a plain background, since no map tiles are reachable offline) and the timeline is inline SVG
too. With ``leaflet=True`` a folium (Leaflet) map is added as well; it loads Leaflet and OpenStreetMap tiles
from their CDNs, so it shows only where the browser is online, and the SVG map stays as the offline view.
"""

from __future__ import annotations

import html
import logging
import math
import tempfile
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from engine.dispatch.insertion import utilisation
from engine.metrics import day_metrics
from engine.travel import TravelTimeProvider
from models import Location, ServiceRequest, TechnicianDay
from truckroll.settings import Settings

log = logging.getLogger(__name__)

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4f46e5",
           "#059669", "#b45309", "#7c3aed", "#0d9488", "#be123c", "#65a30d")


@dataclass
class PlannedJob:
    request_id: int
    location: Location
    start: datetime
    end: datetime
    window_start: datetime
    window_end: datetime
    travel_minutes: float
    job_type: str = ""
    address: str = ""
    customer_name: str = ""


@dataclass
class TechnicianPlan:
    technician_id: int
    name: str
    home: Location
    shift_start: datetime
    shift_end: datetime
    jobs: list[PlannedJob] = field(default_factory=list)
    return_minutes: float = 0.0
    utilisation: float = 0.0

    @property
    def job_minutes(self) -> float:
        return sum((j.end - j.start).total_seconds() / 60 for j in self.jobs)

    @property
    def travel_minutes(self) -> float:
        return sum(j.travel_minutes for j in self.jobs) + self.return_minutes

    @property
    def idle_minutes(self) -> float:
        shift = (self.shift_end - self.shift_start).total_seconds() / 60
        return max(0.0, shift - self.job_minutes - self.travel_minutes)


@dataclass
class DayPlan:
    day: date
    tz: str
    technicians: list[TechnicianPlan]
    metrics: dict[str, float]
    # The shifts the plan was built from (routes as stored), for readers that need more than the picture.
    days: list[TechnicianDay] = field(default_factory=list, repr=False)


def build_day_plan(day: date, *, tz: str, session: Any, travel: TravelTimeProvider) -> DayPlan:
    """The day's routes from the database, with travel legs, utilisation and the day's metrics."""
    from sqlmodel import col, select

    from truckroll import store

    days, values, escalations = store.day_plan(day, ZoneInfo(tz), session=session, live=travel)
    ids = [s.request_id for d in days for s in d.stops]
    requests = {r.id: r for r in session.exec(select(ServiceRequest).where(col(ServiceRequest.id).in_(ids)))} \
        if ids else {}
    return DayPlan(day=day, tz=tz, technicians=[_technician_plan(d, requests, travel) for d in days],
                   metrics=day_metrics(days, travel, values=values, escalations=escalations).as_dict(), days=days)


def _technician_plan(d: TechnicianDay, requests: dict[Any, ServiceRequest], travel: TravelTimeProvider
                     ) -> TechnicianPlan:
    jobs = []
    for s in d.stops:
        r = requests.get(s.request_id)
        jobs.append(PlannedJob(request_id=s.request_id, location=s.location, start=s.start, end=s.end,
                               window_start=s.window.start, window_end=s.window.end, travel_minutes=s.travel_minutes,
                               job_type=r.job_type if r else "", address=r.address if r else "",
                               customer_name=r.customer_name if r else ""))
    back = travel.minutes(d.stops[-1].location, d.home, d.stops[-1].end) if d.stops else 0.0
    return TechnicianPlan(technician_id=d.technician_id, name=d.name, home=d.home, shift_start=d.shift_start,
                          shift_end=d.shift_end, jobs=jobs, return_minutes=back, utilisation=utilisation(d, travel))


# ------------------------------------------------------------------ rendering

def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def render_svg_map(plan: DayPlan, width: int = 900, height: int = 560) -> str:
    """Every route as a polyline from home through its jobs and back, on a plain background (no tiles)."""
    points = [t.home for t in plan.technicians] + [j.location for t in plan.technicians for j in t.jobs]
    if not points:
        return '<p class="empty">No technician on shift.</p>'
    lat0 = sum(p.lat for p in points) / len(points)
    kx = math.cos(math.radians(lat0))
    xs = [p.lon * kx for p in points]
    ys = [p.lat for p in points]
    span = max(max(xs) - min(xs), max(ys) - min(ys), 1e-3)
    pad = 30
    scale = min(width - 2 * pad, height - 2 * pad) / span

    def xy(p: Location) -> tuple[float, float]:
        return (pad + (p.lon * kx - min(xs)) * scale, height - pad - (p.lat - min(ys)) * scale)

    out = [f'<svg id="route-map" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
           f'width="100%" style="max-width:{width}px;background:#eef2f7;border:1px solid #cbd5e1;">']
    for i, t in enumerate(plan.technicians):
        c = _colour(i)
        path = [t.home] + [j.location for j in t.jobs] + ([t.home] if t.jobs else [])
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in map(xy, path))
        out.append(f'<g class="route" id="route-tech-{t.technician_id}" data-technician="{_e(t.name)}">'
                   f'<title>{_e(t.name)}: {len(t.jobs)} jobs</title>')
        out.append(f'<polyline points="{pts}" fill="none" stroke="{c}" stroke-width="2.5" stroke-opacity="0.85"/>')
        hx, hy = xy(t.home)
        out.append(f'<rect x="{hx - 5:.1f}" y="{hy - 5:.1f}" width="10" height="10" fill="#fff" stroke="{c}" '
                   f'stroke-width="2"><title>{_e(t.name)} (home)</title></rect>')
        for n, j in enumerate(t.jobs, 1):
            x, y = xy(j.location)
            out.append(f'<g class="job-marker" data-request="{j.request_id}"><circle cx="{x:.1f}" cy="{y:.1f}" '
                       f'r="7" fill="{c}"/><text x="{x:.1f}" y="{y + 3.5:.1f}" font-size="9" fill="#fff" '
                       f'text-anchor="middle">{n}</text><title>#{j.request_id} {_e(j.job_type)}: {_e(j.address)}'
                       f'</title></g>')
        out.append("</g>")
    out.append("</svg>")
    return "".join(out)


def render_gantt(plan: DayPlan, width: int = 1100) -> str:
    """One row per technician: travel, jobs, idle time in the shift, the promised windows and utilisation."""
    if not plan.technicians:
        return ""
    z = ZoneInfo(plan.tz)
    t0 = min(t.shift_start for t in plan.technicians).astimezone(z).replace(minute=0, second=0, microsecond=0)
    t1 = max([t.shift_end for t in plan.technicians] + [j.end for t in plan.technicians for j in t.jobs])
    hours = max(1, math.ceil((t1 - t0).total_seconds() / 3600))
    label_w, util_w, row_h, top = 150, 90, 34, 24
    plot_w = width - label_w - util_w
    height = top + row_h * len(plan.technicians) + 10

    def x(t: datetime) -> float:
        return label_w + (t - t0).total_seconds() / 3600 / hours * plot_w

    out = [f'<svg id="gantt" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
           f'style="max-width:{width}px;font-family:Arial,sans-serif;font-size:11px;">']
    for h in range(hours + 1):
        hx = label_w + h / hours * plot_w
        out.append(f'<line x1="{hx:.1f}" y1="{top - 4}" x2="{hx:.1f}" y2="{height - 10}" stroke="#e2e8f0"/>'
                   f'<text x="{hx:.1f}" y="{top - 8}" text-anchor="middle" fill="#64748b">'
                   f'{(t0 + timedelta(hours=h)).strftime("%H:%M")}</text>')
    for i, t in enumerate(plan.technicians):
        y = top + i * row_h
        c = _colour(i)
        out.append(f'<g class="timeline" id="timeline-tech-{t.technician_id}">')
        out.append(f'<text x="4" y="{y + 20}" fill="{c}" font-weight="bold">{_e(t.name)}</text>')
        # The shift; what is not covered by travel or jobs below reads as idle.
        out.append(f'<rect class="idle" x="{x(t.shift_start):.1f}" y="{y + 8}" '
                   f'width="{x(t.shift_end) - x(t.shift_start):.1f}" height="18" fill="#f1f5f9" stroke="#cbd5e1">'
                   f'<title>shift {t.shift_start.astimezone(z):%H:%M}-{t.shift_end.astimezone(z):%H:%M}, '
                   f'idle {t.idle_minutes:.0f} min</title></rect>')
        prev_end = t.shift_start
        for j in t.jobs:
            leave = max(prev_end, j.start - timedelta(minutes=j.travel_minutes))
            if j.travel_minutes > 0:
                out.append(f'<rect class="travel" x="{x(leave):.1f}" y="{y + 13}" '
                           f'width="{max(1.0, x(j.start) - x(leave)):.1f}" height="8" fill="#94a3b8">'
                           f'<title>travel {j.travel_minutes:.0f} min to #{j.request_id}</title></rect>')
            out.append(f'<rect class="window" x="{x(j.window_start):.1f}" y="{y + 4}" '
                       f'width="{x(j.window_end) - x(j.window_start):.1f}" height="3" fill="{c}" opacity="0.45">'
                       f'<title>#{j.request_id}: window promised {j.window_start.astimezone(z):%H:%M}-'
                       f'{j.window_end.astimezone(z):%H:%M}</title></rect>')
            out.append(f'<g class="job" data-request="{j.request_id}"><rect x="{x(j.start):.1f}" y="{y + 8}" '
                       f'width="{max(2.0, x(j.end) - x(j.start)):.1f}" height="18" fill="{c}" rx="2"/>'
                       f'<text x="{x(j.start) + 3:.1f}" y="{y + 21}" fill="#fff" font-size="10">#{j.request_id}'
                       f'</text><title>#{j.request_id} {_e(j.job_type)} {j.start.astimezone(z):%H:%M}-'
                       f'{j.end.astimezone(z):%H:%M}, {_e(j.address)}</title></g>')
            prev_end = j.end
        if t.jobs and t.return_minutes > 0:
            last = t.jobs[-1].end
            out.append(f'<rect class="travel" x="{x(last):.1f}" y="{y + 13}" '
                       f'width="{max(1.0, x(last + timedelta(minutes=t.return_minutes)) - x(last)):.1f}" height="8" '
                       f'fill="#94a3b8"><title>travel home {t.return_minutes:.0f} min</title></rect>')
        out.append(f'<text class="utilisation" x="{width - util_w + 8}" y="{y + 21}" fill="#0f172a">'
                   f'{t.utilisation:.0%} busy</text></g>')
    out.append("</svg>")
    return "".join(out)


def _folium_map(plan: DayPlan) -> str:
    import folium

    points = [t.home for t in plan.technicians] + [j.location for t in plan.technicians for j in t.jobs]
    if not points:
        return ""
    m = folium.Map(location=[sum(p.lat for p in points) / len(points), sum(p.lon for p in points) / len(points)],
                   zoom_start=10)
    for i, t in enumerate(plan.technicians):
        path = [t.home] + [j.location for j in t.jobs] + ([t.home] if t.jobs else [])
        folium.PolyLine([(p.lat, p.lon) for p in path], color=_colour(i), weight=3, tooltip=t.name).add_to(m)
        for j in t.jobs:
            folium.CircleMarker((j.location.lat, j.location.lon), radius=6, color=_colour(i), fill=True,
                                tooltip=f"#{j.request_id} {j.job_type}").add_to(m)
    page = m.get_root().render()
    return (f'<iframe title="Leaflet map" style="width:100%;max-width:900px;height:560px;border:1px solid #cbd5e1;" '
            f'srcdoc="{_e(page)}"></iframe>')


def _fmt_metric(name: str, value: float) -> str:
    if "utilisation" in name:
        return f"{value:.0%}"
    if name in ("technicians", "jobs", "escalations"):
        return f"{value:.0f}"
    if name == "revenue":
        return f"${value:,.0f}"
    return f"{value:,.1f}"


def render_plan_html(plan: DayPlan, *, leaflet: bool = False) -> str:
    """The whole page: metrics, the route map, the timeline and a table of every job."""
    z = ZoneInfo(plan.tz)
    m = plan.metrics
    metric_rows = "".join(f"<tr><td>{_e(k.replace('_', ' '))}</td><td>{_fmt_metric(k, v)}</td></tr>"
                          for k, v in m.items())
    legend = "".join(
        f'<li class="legend-tech" data-technician-id="{t.technician_id}"><span style="color:{_colour(i)}">&#9632;'
        f'</span> {_e(t.name)}: {len(t.jobs)} jobs, {t.utilisation:.0%} busy, travel {t.travel_minutes:.0f} min, '
        f'idle {t.idle_minutes:.0f} min</li>' for i, t in enumerate(plan.technicians))
    rows = "".join(
        f'<tr data-request="{j.request_id}"><td>{_e(t.name)}</td><td>#{j.request_id}</td><td>{_e(j.job_type)}</td>'
        f'<td>{j.start.astimezone(z):%H:%M}-{j.end.astimezone(z):%H:%M}</td>'
        f'<td>{j.window_start.astimezone(z):%H:%M}-{j.window_end.astimezone(z):%H:%M}</td>'
        f'<td>{j.travel_minutes:.0f} min</td><td>{_e(j.address)}</td></tr>'
        for t in plan.technicians for j in t.jobs)
    leaflet_html = ""
    if leaflet:
        try:
            leaflet_html = ("<h2>Street map (needs internet for Leaflet and the tiles)</h2>" + _folium_map(plan))
        except Exception:  # noqa: BLE001 - the offline SVG map is always there
            log.warning("could not build the folium map", exc_info=True)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Plan for {plan.day.isoformat()}</title>
<style>
body{{font-family:Arial,Helvetica,sans-serif;color:#0f172a;margin:24px;}}
table{{border-collapse:collapse;font-size:13px;}}
td,th{{border-bottom:1px solid #e2e8f0;padding:3px 8px;text-align:left;}}
ul{{list-style:none;padding-left:0;}} .note{{color:#64748b;font-size:12px;}}
</style></head>
<body>
<h1>Plan for {plan.day:%A %d %B %Y}</h1>
<table id="metrics">{metric_rows}</table>
<h2>Routes</h2>
<p class="note">Routes drawn as straight legs between stops on a plain background: no map tiles are needed
(or reachable) offline. Squares are homes, numbered circles the jobs in visiting order.</p>
{render_svg_map(plan)}
<ul id="legend">{legend}</ul>
{leaflet_html}
<h2>Timeline</h2>
<p class="note">Coloured bars are jobs, grey bars travel, the pale band the shift (uncovered = idle); the thin bar
above each job is the arrival window promised to the customer.</p>
{render_gantt(plan)}
<h2>Jobs</h2>
<table id="jobs"><tr><th>technician</th><th>request</th><th>job</th><th>planned</th><th>window promised</th>
<th>travel in</th><th>address</th></tr>{rows}</table>
</body></html>
"""


def load_day_plan(day: date, settings: Settings) -> DayPlan:
    """The day's plan (routes, legs, utilisation, metrics) from the configured database."""
    from truckroll.db import session_scope
    from truckroll.travel.provider import get_travel_provider

    with session_scope() as session:
        return build_day_plan(day, tz=settings.company_timezone, session=session,
                              travel=get_travel_provider(settings))


def write_plan(day: date, path: Path | str, *, settings: Settings, leaflet: bool = False) -> DayPlan:
    """Build the day's plan from the configured database and write the page to ``path``."""
    plan = load_day_plan(day, settings)
    Path(path).write_text(render_plan_html(plan, leaflet=leaflet), encoding="utf-8")
    return plan


def plan_dir(directory: str | None = None) -> Path:
    """Where flows write the plan pages they link from their artifacts: ``directory`` (the caller passes the
    ``plan_dir`` setting, TRUCKROLL_PLAN_DIR), else <temp dir>/truckroll-plans. Created if missing."""
    d = Path(directory) if directory else Path(tempfile.gettempdir()) / "truckroll-plans"
    d.mkdir(parents=True, exist_ok=True)
    return d
