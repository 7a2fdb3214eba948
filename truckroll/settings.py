"""One settings object, read from the environment (prefix ``TRUCKROLL_``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.config import DispatchSettings


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRUCKROLL_", env_nested_delimiter="__", env_file=".env",
                                      extra="ignore")

    database_url: str = "sqlite:///truckroll.db"
    company_timezone: str = "America/Chicago"
    company_name: str = "Lone Star Home Services"
    dispatch_email: str = "dispatch@example.com"
    dispatch: DispatchSettings = DispatchSettings()
    # Default travel estimate: great-circle distance x detour factor at an average speed.
    travel_detour_factor: float = 1.3
    travel_speed_kmh: float = 40.0
    webhook_secret: str = "change-me"


@lru_cache
def get_settings() -> Settings:
    return Settings()
