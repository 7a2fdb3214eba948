"""Booking input shapes (pydantic): a prospective job asking for windows, and a booking of one window."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from models.schemas import IdList, Text, WindowIn, check_skill_levels


class ProspectiveJob(BaseModel):
    """A job a customer wants to book: what, where, what it is worth, and when the customer can be home."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)

    job_type: str = Field(min_length=1, max_length=200)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    address: str = Field("", max_length=500)
    complexity: str = Field("medium", pattern="^(low|medium|high)$")
    required_skills: dict[str, int] = Field(default_factory=dict, max_length=50)
    required_certifications: list[Text] = Field(default_factory=list, max_length=50)
    estimated_duration_minutes: int | None = Field(None, gt=0, le=24 * 60)
    # None: the job type's typical value.
    estimated_value: float | None = Field(None, ge=0)
    priority: int = Field(5, ge=3, le=10)
    # When the customer can receive the technician; empty = any bookable window of the horizon.
    time_windows: list[WindowIn] = Field(default_factory=list, max_length=20)
    # How many days ahead to look (default: the configured horizon).
    days: int | None = Field(None, ge=1, le=60)
    preferred_technician_ids: IdList = Field(default_factory=list)
    excluded_technician_ids: IdList = Field(default_factory=list)

    @field_validator("required_skills")
    @classmethod
    def _levels(cls, v: dict[str, int]) -> dict[str, int]:
        return check_skill_levels(v)


class BookingCreate(ProspectiveJob):
    """The customer picked ``window`` among the offered ones."""

    window: WindowIn
    customer_name: str = Field(min_length=1, max_length=200)
    customer_phone: str = Field("", max_length=40)
    customer_email: str = Field("", max_length=254)
    description: str = Field("", max_length=4000)
    notes: str = Field("", max_length=4000)
