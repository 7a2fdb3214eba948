"""Operators are alerted the Prefect way: automations (created with the deployments, flows/deploy.py) run
this flow's deployment, which puts the alert in the outbox and delivers it (the mail catcher under make serve)."""

from __future__ import annotations

from typing import Literal

from prefect import flow, get_run_logger

from tasks.notifications import deliver_quietly
from truckroll.db import session_scope
from truckroll.notifications import messages
from truckroll.settings import get_settings


@flow(name="notify-operators", flow_run_name="alert: {subject}")
def notify_operators(subject: str, body: str = "", to: Literal["operators", "dispatch"] = "operators",
                     automation: str = "", key: str = "") -> int:
    """Queue and deliver one alert to the operators (or dispatch); returns the notification id."""
    settings = get_settings()
    recipient = settings.operators_email if to == "operators" else settings.dispatch_email
    with session_scope() as session:
        note = messages.operator_alert(session=session, key=f"alert:{key or subject}:{recipient}",
                                       recipient=recipient, subject=subject[:200], body=body[:4000],
                                       automation=automation or "manual", company_name=settings.company_name)
        assert note.id is not None
        note_id = note.id
    get_run_logger().warning("alert to %s: %s", recipient, subject)
    deliver_quietly(notification_ids=[note_id])
    return note_id
