"""A local mail catcher for a newcomer's machine (``truckroll mailsink``, started by ``make serve``).

An SMTP server (aiosmtpd) accepts every message and files it in a Maildir; a small web inbox lists them, newest
first, and shows each one. Nothing leaves the machine. A company points ``TRUCKROLL_NOTIFY_EMAIL_URL`` (and the
SMS, dispatch and technician URLs) at its real channels instead; ``make serve`` then starts no catcher.
"""

from __future__ import annotations

import email
import html
import mailbox
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote


@dataclass(frozen=True)
class Mail:
    key: str
    to: str
    subject: str
    date: str
    body: str


def _text(msg: Message) -> str:
    """The plain-text part of a message (or its HTML stripped of nothing, when that is all there is)."""
    parts = [p for p in msg.walk() if not p.is_multipart()]
    chosen = next((p for p in parts if p.get_content_type() == "text/plain"), parts[0] if parts else None)
    if chosen is None:
        return ""
    payload = chosen.get_payload(decode=True)
    if isinstance(payload, bytes):
        return payload.decode(chosen.get_content_charset() or "utf-8", "replace")
    return str(payload or "")


def read_inbox(maildir: Path) -> list[Mail]:
    """Every message in the Maildir, newest first."""
    box = mailbox.Maildir(str(maildir), create=True)
    mails: list[tuple[float, Mail]] = []
    for key in box.keys():
        msg = box.get_message(key)
        try:
            when = parsedate_to_datetime(msg["Date"]).timestamp() if msg["Date"] else msg.get_date()
        except (TypeError, ValueError):
            when = msg.get_date()
        mails.append((when, Mail(key=key, to=str(msg["To"] or msg["X-Rcpt-To"] or ""),
                                 subject=str(msg["Subject"] or ""), date=str(msg["Date"] or ""), body=_text(msg))))
    return [m for _, m in sorted(mails, key=lambda t: t[0], reverse=True)]


class _Store:
    def __init__(self, maildir: Path) -> None:
        self.box = mailbox.Maildir(str(maildir), create=True)
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's API
        msg = email.message_from_bytes(envelope.content)
        if not msg["To"]:
            msg["To"] = ", ".join(envelope.rcpt_tos)
        msg["X-Rcpt-To"] = ", ".join(envelope.rcpt_tos)
        with self.lock:
            self.box.add(mailbox.MaildirMessage(msg))
        return "250 OK"


def _page(title: str, body: str) -> bytes:
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            "<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:70em}td{padding:.2em .8em}"
            "pre{white-space:pre-wrap;background:#f6f6f6;padding:1em}</style></head>"
            f"<body><h1>{html.escape(title)}</h1>{body}</body></html>").encode()


def _handler(maildir: Path) -> type[BaseHTTPRequestHandler]:
    class Inbox(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            return

        def _send(self, status: int, content: bytes, ctype: str = "text/html; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            self.wfile.write(content)

        def do_GET(self) -> None:  # noqa: N802 - http.server's API
            mails = read_inbox(maildir)
            if self.path.startswith("/messages/"):
                key = unquote(self.path.removeprefix("/messages/"))
                found = next((m for m in mails if m.key == key), None)
                if found is None:
                    self._send(404, _page("No such message", '<p><a href="/">Inbox</a></p>'))
                    return
                self._send(200, _page(found.subject, f'<p><a href="/">Inbox</a></p><p>To: {html.escape(found.to)}'
                                                     f"<br>Date: {html.escape(found.date)}</p>"
                                                     f"<pre>{html.escape(found.body)}</pre>"))
                return
            if self.path == "/healthz":
                self._send(200, b"ok", "text/plain")
                return
            rows = "".join(f'<tr><td>{html.escape(m.date)}</td><td>{html.escape(m.to)}</td>'
                           f'<td><a href="/messages/{html.escape(m.key)}">{html.escape(m.subject or "(no subject)")}'
                           "</a></td></tr>" for m in mails)
            self._send(200, _page(f"truckroll mail catcher: {len(mails)} message(s)",
                                  "<table><tr><th>date</th><th>to</th><th>subject</th></tr>" + rows + "</table>"))

    return Inbox


@contextmanager
def running(maildir: Path, *, smtp_port: int, http_port: int, host: str = "127.0.0.1") -> Iterator[ThreadingHTTPServer]:
    """The SMTP server and the web inbox, stopped when the block ends."""
    from aiosmtpd.controller import Controller

    for sub in ("tmp", "new", "cur"):  # mailbox.Maildir creates them only for a directory that does not exist yet
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    smtp = Controller(_Store(maildir), hostname=host, port=smtp_port)
    smtp.start()
    web = ThreadingHTTPServer((host, http_port), _handler(maildir))
    thread = threading.Thread(target=web.serve_forever, name="mail-inbox", daemon=True)
    thread.start()
    try:
        yield web
    finally:
        web.shutdown()
        web.server_close()
        smtp.stop()
