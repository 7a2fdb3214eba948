"""The console's pages and its own static files. A page is a shell: it holds no data (an anonymous caller
sees only the sign-in form); its script signs in with ``POST /auth/token`` and reads everything from the
role-checked JSON API with the bearer token (docs/console.md)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.staticfiles import StaticFiles

from service.limits import DbId

ROOT = Path(__file__).resolve().parents[2]
STATIC_DIR = ROOT / "service" / "static"
TEMPLATES_DIR = ROOT / "templates" / "console"
LEAFLET_DIR = STATIC_DIR / "vendor" / "leaflet"

router = APIRouter(include_in_schema=False)
_static = StaticFiles(directory=STATIC_DIR, check_dir=False)


@lru_cache
def _env() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(["html", "j2"]))


def leaflet_available() -> bool:
    """Whether ``make vendor`` put Leaflet in place (the map falls back to a plain drawing without it)."""
    return (LEAFLET_DIR / "leaflet.js").is_file() and (LEAFLET_DIR / "leaflet.css").is_file()


def _csp(tile_url: str) -> str:
    """Scripts, styles and data only from truckroll itself; images also from the tile server when one is set."""
    img = "'self' data:"
    if tile_url:
        parts = urlsplit(tile_url.replace("{s}", "a"))
        if parts.scheme in ("http", "https") and parts.netloc:
            host = parts.netloc.replace("a.", "*.", 1) if "{s}" in tile_url else parts.netloc
            img += f" {parts.scheme}://{host}"
    return (f"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src {img}; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


def _page(view: str, **context: Any) -> HTMLResponse:
    from flows.runs import prefect_ui_url
    from truckroll.settings import get_settings

    s = get_settings()
    html = _env().get_template("console.html.j2").render(
        view=view, leaflet=leaflet_available(), tile_url=s.tile_url, tile_attribution=s.tile_attribution,
        prefect_ui_url=prefect_ui_url() or "", company_name=s.company_name, company_timezone=s.company_timezone,
        **context)
    return HTMLResponse(html, headers={"Content-Security-Policy": _csp(s.tile_url), "X-Content-Type-Options":
                                       "nosniff", "Referrer-Policy": "same-origin", "Cache-Control": "no-store"})


@router.get("/console")
def console_board() -> HTMLResponse:
    return _page("board")


@router.get("/console/")
def console_slash() -> RedirectResponse:
    return RedirectResponse("/console", status_code=status.HTTP_308_PERMANENT_REDIRECT)


@router.get("/console/requests/{request_id}")
def console_request(request_id: DbId) -> HTMLResponse:
    return _page("request", request_id=request_id)


@router.get("/console/static/{path:path}")
async def console_static(path: str, request: Request) -> Any:
    """The console's scripts and styles, and the vendored libraries (``make vendor``)."""
    try:
        return await _static.get_response(path, request.scope)
    except HTTPException:
        raise
    except Exception:  # noqa: BLE001 - a missing or unreadable file is a 404, never a 500
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no file {path}") from None
