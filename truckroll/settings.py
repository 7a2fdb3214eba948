"""One settings object, read from the environment (prefix ``TRUCKROLL_``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from engine.booking.windows import BookingSettings
from engine.config import DispatchSettings
from truckroll.client import DEFAULT_COMPANY_TIMEZONE, DEFAULT_WEBHOOK_SECRET


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRUCKROLL_", env_nested_delimiter="__", env_file=".env",
                                      extra="ignore")

    database_url: str = "sqlite:///truckroll.db"
    company_timezone: str = DEFAULT_COMPANY_TIMEZONE
    company_name: str = "Lone Star Home Services"
    dispatch_email: str = "dispatch@example.com"
    # Where operations alerts go (crashed or failed runs, late runs, a re-optimisation not applied).
    operators_email: str = "operators@example.com"
    dispatch: DispatchSettings = DispatchSettings()
    # Daily re-optimisation (flows/reoptimize.py): CBC limits, the schedule, and whether escalated and open
    # requests of the day are offered to the model again.
    reoptimize_time_limit_seconds: float = 30.0
    reoptimize_mip_gap: float = 0.0
    cbc_executable: str = "cbc"
    reoptimize_cron: str = "0 5 * * *"
    reoptimize_interval_minutes: int | None = None
    reoptimize_rescue_escalations: bool = True
    # The horizon re-planned together (today and the next working days) and the most a run may ask for.
    reoptimize_horizon_days: int = 3
    reoptimize_max_horizon_days: int = 7
    # Booking (docs/booking.md): windows, horizon, grade weights; a JSON forecast file instead of the history.
    booking: BookingSettings = BookingSettings()
    booking_forecast_file: str | None = None
    # Default travel estimate: great-circle distance x detour factor at an average speed.
    travel_detour_factor: float = 1.3
    travel_speed_kmh: float = 40.0
    # Speeds by time of day: [[start_hour, end_hour, kmh], ...] in company time, e.g. [[7, 9, 25], [16, 18, 25]].
    travel_speed_profile: list[tuple[float, float, float]] = []
    # openrouteservice: set a base URL (https://api.openrouteservice.org with a key, or a self-hosted server).
    ors_base_url: str | None = None
    ors_api_key: str | None = None
    ors_profile: str = "driving-car"
    ors_timeout_seconds: float = 10.0
    # Origins x destinations per matrix request; unset = 3500 on the public API, 2500 (ORS's default
    # ors.endpoints.matrix.maximum_routes) on a self-hosted server.
    ors_max_matrix_elements: int | None = None
    # How long the client keeps retrying 429/503 before truckroll falls back to the great-circle estimate.
    ors_retry_timeout_seconds: float = 20.0
    travel_cache_ttl_hours: float = 24.0 * 7
    # Notification delivery (apprise URLs); unset = messages stay pending in the outbox.
    notify_email_url: str | None = None
    notify_sms_url: str | None = None
    notify_dispatch_url: str | None = None
    notify_technician_url: str | None = None
    notify_max_attempts: int = 5
    notify_backoff_seconds: float = 30.0
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET
    # Accepted requests whose dispatch has not finished after this long are run again (truckroll requeue).
    requeue_after_seconds: float = 120.0
    # How often the intake service sweeps for them (0 = never; the requeue-sweep deployment also does it).
    requeue_sweep_interval_seconds: float = 60.0
    # Where dispatch flows run: "deployment" (Prefect workers), "in-process" (inside the intake service), or
    # "auto": deployment when PREFECT_API_URL is set.
    flow_runs: Literal["auto", "task-worker", "deployment", "in-process"] = "auto"
    # Requests whose windows start further ahead than this are refused (422 naming the window).
    planning_horizon_days: int = 90
    # A dispatch run holds its request by a lease it renews every third of this while it works; a run whose
    # process died stops renewing and the sweep runs the request again once the lease has expired.
    dispatch_lease_seconds: float = 60.0
    # After this many runs that did not finish, the request is escalated with the last error (a dead letter).
    max_dispatch_attempts: int = 3
    # Concurrent dispatch runs per task worker (truckroll worker, make serve): threads share one core, so a
    # few per worker and more workers (one per core) rather than many threads.
    worker_limit: int = 2
    # Requests waiting together are handed to the task workers in one batch of up to this many (each still its
    # own flow run), so a burst does not cost the Prefect server a task run per request.
    handover_batch: int = Field(4, ge=1, le=50)
    # A dispatch run refreshes its day's plan page and metrics artifacts at most this often per worker; the
    # worker refreshes what it skipped when the interval ends (0: after every dispatch).
    plan_artifact_seconds: float = Field(30.0, ge=0)
    # Security (docs/security.md). Webhook secrets accepted at once (rotation: add the new one, move senders,
    # remove the old one); empty = webhook_secret alone. A signature older or newer than the tolerance is refused.
    webhook_secrets: list[str] = []
    webhook_tolerance_seconds: int = 300
    # The service refuses to start with the default webhook secret unless this says it is a development set-up.
    development: bool = False
    # Bearer tokens from POST /auth/token (and `truckroll users token`) expire after this long.
    token_ttl_minutes: int = 12 * 60
    # Every request body is refused over this size (413); the webhook has its own, smaller limit.
    max_body_bytes: int = 1024 * 1024
    # Dates the API accepts (/capacity, schedules): this many days either side of today.
    api_date_range_days: int = 3660
    # A rules document may hold at most this many items in all.
    max_rules_items: int = 5000
    # The dispatcher's console (docs/console.md): a map tile server ("https://tiles.example/{z}/{x}/{y}.png";
    # empty = no tiles, the map is drawn on a plain background) and its attribution; the Prefect UI's address
    # for the links from a request's page (empty = PREFECT_UI_URL).
    tile_url: str = ""
    tile_attribution: str = ""
    prefect_ui_url: str = ""
    # The console's address as dispatchers reach it (e.g. https://dispatch.example.com/console): Prefect's
    # artifacts and the escalation e-mail link a request's page there. Empty = no such links.
    console_url: str = ""
    # Polls of the console's board within this many seconds share one build of it (0 = build every time).
    console_poll_cache_seconds: float = 2.0
    # Where the dispatch flow writes the day-plan pages its artifacts link to; unset = <temp dir>/truckroll-plans.
    plan_dir: str | None = None
    # The notification templates (Jinja2); unset = templates/ of this checkout.
    templates_dir: str | None = None



def webhook_secrets(settings: Settings) -> list[str]:
    """The secrets a webhook signature may be made with, newest first."""
    return [s for s in settings.webhook_secrets if s] or [settings.webhook_secret]


@lru_cache
def get_settings() -> Settings:
    return Settings()
