"""Render notifications from the Jinja2 templates in ``templates/`` into the outbox (Notification rows).

A template's first line is ``Subject: ...``; the rest is the body. Rendering is strict (an undefined variable
is an error), so a template never sends a message with a blank where a time should be.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlmodel import Session, select

from models import Notification, ServiceRequest

# The templates of this checkout; the ``templates_dir`` setting (TRUCKROLL_TEMPLATES_DIR) points elsewhere.
TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"


def _fmt_time(value: datetime, tz: str | None = None, fmt: str = "%a %d %b, %H:%M") -> str:
    return value.astimezone(ZoneInfo(tz)).strftime(fmt) if tz else value.strftime(fmt)


def _fmt_clock(value: datetime, tz: str | None = None) -> str:
    return _fmt_time(value, tz, "%H:%M")


@lru_cache
def environment() -> Environment:
    from truckroll.settings import get_settings

    loader = FileSystemLoader(get_settings().templates_dir or str(TEMPLATES_DIR))
    env = Environment(loader=loader, undefined=StrictUndefined,
                      autoescape=select_autoescape(["html", "html.j2"]), trim_blocks=True, lstrip_blocks=True)
    env.filters["local_time"] = _fmt_time
    env.filters["clock"] = _fmt_clock
    return env


def render(template: str, context: dict[str, Any]) -> tuple[str, str]:
    """Render ``template`` (name without extension) to (subject, text body)."""
    text = environment().get_template(f"{template}.txt.j2").render(**context)
    first, _, body = text.partition("\n")
    if not first.startswith("Subject:"):
        raise ValueError(f"template {template!r} must start with a 'Subject:' line")
    return first.removeprefix("Subject:").strip(), body.strip() + "\n"


def render_html(template: str, context: dict[str, Any]) -> str:
    """The HTML body, when the template has one (``NAME.html.j2``); autoescaped."""
    try:
        tpl = environment().get_template(f"{template}.html.j2")
    except Exception:  # noqa: BLE001 - an HTML variant is optional
        return ""
    return tpl.render(**context)


def customer_contact(request: ServiceRequest) -> tuple[str, str] | None:
    """Where a message to the request's customer goes: (recipient, channel), e-mail first, else SMS to the phone;
    None when the customer left neither. Every customer message takes its recipient and channel from here, so a
    message never goes out on a channel the customer does not have."""
    if request.customer_email:
        return request.customer_email, "email"
    if request.customer_phone:
        return request.customer_phone, "sms"
    return None


def queue(*, session: Session, dedupe_key: str, template: str, recipient: str, recipient_kind: str,
          context: dict[str, Any], request_id: int | None = None, channel: str = "email") -> Notification:
    """Put a rendered message in the outbox once: the same ``dedupe_key`` returns the message queued before."""
    existing = session.exec(select(Notification).where(Notification.dedupe_key == dedupe_key)).first()
    if existing is not None:
        return existing
    subject, body = render(template, context)
    note = Notification(request_id=request_id, dedupe_key=dedupe_key, recipient=recipient,
                        recipient_kind=recipient_kind, channel=channel, template=template, subject=subject,
                        body=body, body_html=render_html(template, context))
    session.add(note)
    session.flush()
    return note
