"""What a light client of the intake service needs (``truckroll request create --service``): signing webhook
bodies (HMAC-SHA256), the shared secret and the company's time zone, without importing the database, the
engine or the web framework. The service checks signatures with the same function (``service/security.py``);
``truckroll.settings`` takes its defaults from here."""

from __future__ import annotations

import hashlib
import hmac

from pydantic_settings import BaseSettings, SettingsConfigDict

SIGNATURE_HEADER = "X-Truckroll-Signature"
SIGNATURE_PREFIX = "sha256="
DEFAULT_WEBHOOK_SECRET = "change-me"
DEFAULT_COMPANY_TIMEZONE = "America/Chicago"


def sign(body: bytes, secret: str) -> str:
    """The header value a sender puts in ``X-Truckroll-Signature`` for ``body``."""
    return SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class ClientSettings(BaseSettings):
    """The two settings a client needs, read as ``truckroll.settings.Settings`` reads them (environment, .env)."""

    model_config = SettingsConfigDict(env_prefix="TRUCKROLL_", env_file=".env", extra="ignore")

    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    company_timezone: str = DEFAULT_COMPANY_TIMEZONE
