"""Notification commands: preview a template, drain the outbox."""

from __future__ import annotations

import typer

from cli.app import app, console, fail

notifications_app = typer.Typer(help="Customer, technician and dispatch notifications.", no_args_is_help=True)
app.add_typer(notifications_app, name="notifications")


@notifications_app.command("preview")
def preview(template: str = typer.Argument(..., help="Template name, e.g. customer_arrival_window."),
            html: bool = typer.Option(False, "--html", help="Print the HTML variant instead of the text."),
            customer_name: str | None = typer.Option(None, help="Replace the sample customer's name.")) -> None:
    """Render one template with sample data."""
    from truckroll.notifications import outbox as notify
    from truckroll.notifications.samples import TEMPLATES, sample_context
    from truckroll.settings import get_settings

    s = get_settings()
    try:
        overrides = {"customer_name": customer_name} if customer_name is not None else {}
        ctx = sample_context(template, tz=s.company_timezone, company_name=s.company_name, **overrides)
    except ValueError:
        raise fail(f"unknown template {template!r}; one of: {', '.join(TEMPLATES)}") from None
    if html:
        body = notify.render_html(template, ctx)
        if not body:
            raise fail(f"{template} has no HTML variant (templates/{template}.html.j2)")
        typer.echo(body)
        return
    subject, text = notify.render(template, ctx)
    typer.echo(f"Subject: {subject}\n\n{text}", nl=False)


@notifications_app.command("send")
def send(wait: float = typer.Option(0.0, help="Seconds to keep retrying failed messages (with backoff)."),
         limit: int = typer.Option(500, help="At most this many messages per pass.")) -> None:
    """Send every due message in the outbox once (configure notify_email_url, notify_sms_url, ...)."""
    from truckroll.db import init_db
    from truckroll.notifications import delivery
    from truckroll.settings import get_settings

    init_db()
    report = delivery.drain(settings=get_settings(), max_wait_seconds=wait, limit=limit)
    counts = report.as_dict()
    console.print(f"sent {counts['sent']}, retry later {counts['retry_later']}, failed {counts['failed']}, "
                  f"no channel configured {counts['unrouted']}")
    if report.unrouted:
        console.print("[yellow]messages without a configured channel stay pending: set TRUCKROLL_NOTIFY_EMAIL_URL, "
                      "TRUCKROLL_NOTIFY_SMS_URL or TRUCKROLL_NOTIFY_DISPATCH_URL[/]")
    if report.failed:
        raise typer.Exit(1)
