"""What a light client of the intake service needs (``truckroll request create --service``): signing webhook
bodies (HMAC-SHA256), the shared secret and the company's time zone, without importing the database, the
engine or the web framework. The service checks signatures with the same function (``service/security.py``);
``truckroll.settings`` takes its defaults from here."""

from __future__ import annotations

import hashlib
import hmac
import time

from pydantic_settings import BaseSettings, SettingsConfigDict

SIGNATURE_HEADER = "X-Truckroll-Signature"
DEFAULT_WEBHOOK_SECRET = "change-me"
DEFAULT_COMPANY_TIMEZONE = "America/Chicago"


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The header value a sender puts in ``X-Truckroll-Signature`` for ``body`` (now, or at ``timestamp``):
    ``t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``. Sign every delivery afresh: a signature seen
    before is refused as a replay."""
    t = int(time.time()) if timestamp is None else int(timestamp)
    mac = hmac.new(secret.encode(), str(t).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


class ClientSettings(BaseSettings):
    """The settings a client needs, read as ``truckroll.settings.Settings`` reads them (environment, .env).

    ``api_key`` (``TRUCKROLL_API_KEY``) is a dispatcher's key (``truckroll users key``) for reading the outcome."""

    model_config = SettingsConfigDict(env_prefix="TRUCKROLL_", env_file=".env", extra="ignore")

    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    company_timezone: str = DEFAULT_COMPANY_TIMEZONE
    api_key: str | None = None
