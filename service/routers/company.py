"""Company set-up (admin role): technicians, the job-type catalogue, customers, shift patterns and memberships
as typed resources, and the whole document (``PUT /company``) as a declarative sync. Every write is validated
whole: an error answers 422 naming every failing item with its path, and nothing is changed.

The routes carry no authentication of their own: the admin role is wired in front of this router."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, status

from models.company import (
    CompanyDocument,
    CustomerIn,
    JobTypeIn,
    MembershipIn,
    ShiftPatternIn,
    SyncReport,
    TechnicianIn,
)
from service.auth import AUTH_RESPONSES, require_roles
from service.deps import SessionDep
from service.errors import ErrorOut
from truckroll.company.sync import CompanyImportError, exists, export_document, sync
from truckroll.rules.config import RulesConfigError
from truckroll.settings import get_settings

# Admins only (require_roles() with no role admits admins).
router = APIRouter(prefix="/company", tags=["company set-up"],
                   responses={**AUTH_RESPONSES, 404: {"model": ErrorOut, "description": "No such item"}},
                   dependencies=[Depends(require_roles())])


def _sync(document: dict[str, Any], session: SessionDep, prune: bool = False) -> SyncReport:
    try:
        return sync(document, session=session, tz=get_settings().company_timezone, prune=prune)
    except (CompanyImportError, RulesConfigError) as exc:
        # The session rolls back: nothing half-written.
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            {"message": "refused; nothing was changed", "errors": exc.errors}) from None


def _one(session: SessionDep, section: str, key: str, value: str) -> dict[str, Any]:
    for item in export_document(session=session, tz=get_settings().company_timezone)[section]:
        if item[key] == value:
            return item  # type: ignore[no-any-return]
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {section[:-1].replace('_', ' ')} {value!r}")


@router.get("", summary="The whole company set-up")
def get_company(session: SessionDep) -> dict[str, Any]:
    """Job types, shift patterns, technicians, customers, territories and memberships: what ``PUT /company``
    and ``truckroll company import`` accept."""
    return export_document(session=session, tz=get_settings().company_timezone)


@router.put("", response_model=SyncReport, summary="Sync the whole company set-up")
def put_company(document: CompanyDocument, session: SessionDep,
                prune: bool = Query(False, description="Remove items of each listed section the body does not "
                                                       "name (technicians are deactivated).")) -> SyncReport:
    """A declarative sync: the same body twice changes nothing; removals go in ``remove`` or use ``prune``."""
    return _sync(document.model_dump(mode="json", by_alias=True, exclude_none=True), session, prune)


@router.get("/technicians", summary="Technicians")
def list_technicians(session: SessionDep) -> list[dict[str, Any]]:
    return export_document(session=session, tz=get_settings().company_timezone)["technicians"]  # type: ignore[no-any-return]


@router.get("/technicians/{name}", summary="One technician")
def get_technician(name: str, session: SessionDep) -> dict[str, Any]:
    return _one(session, "technicians", "name", name)


@router.put("/technicians", response_model=SyncReport, summary="Create or update technicians")
def put_technicians(body: list[TechnicianIn], session: SessionDep) -> SyncReport:
    """Matched by name: skills and levels, certifications with expiry, home base, multiplier, van stock,
    shift pattern and its exceptions."""
    return _sync({"technicians": [t.model_dump(mode="json") for t in body]}, session)


@router.delete("/technicians/{name}", response_model=SyncReport, summary="Deactivate a technician")
def delete_technician(name: str, session: SessionDep) -> SyncReport:
    if not exists("technicians", name, session=session):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no technician {name!r}")
    return _sync({"remove": {"technicians": [name]}}, session)


@router.get("/job-types", summary="The job-type catalogue")
def list_job_types(session: SessionDep) -> list[dict[str, Any]]:
    return export_document(session=session, tz=get_settings().company_timezone)["job_types"]  # type: ignore[no-any-return]


@router.put("/job-types", response_model=SyncReport, summary="Create or update job types")
def put_job_types(body: list[JobTypeIn], session: SessionDep) -> SyncReport:
    return _sync({"job_types": [j.model_dump(mode="json") for j in body]}, session)


@router.delete("/job-types/{name}", response_model=SyncReport, summary="Remove a job type")
def delete_job_type(name: str, session: SessionDep) -> SyncReport:
    if not exists("job_types", name, session=session):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no job type {name!r}")
    return _sync({"remove": {"job_types": [name]}}, session)


@router.get("/customers", summary="Customers")
def list_customers(session: SessionDep) -> list[dict[str, Any]]:
    return export_document(session=session, tz=get_settings().company_timezone)["customers"]  # type: ignore[no-any-return]


@router.get("/customers/{ref}", summary="One customer")
def get_customer(ref: str, session: SessionDep) -> dict[str, Any]:
    return _one(session, "customers", "ref", ref)


@router.put("/customers", response_model=SyncReport, summary="Create or update customers")
def put_customers(body: list[CustomerIn], session: SessionDep) -> SyncReport:
    """Matched by ``ref``: addresses, closed hours, notes, preferred and excluded technicians (by name)."""
    return _sync({"customers": [c.model_dump(mode="json") for c in body]}, session)


@router.delete("/customers/{ref}", response_model=SyncReport, summary="Remove a customer")
def delete_customer(ref: str, session: SessionDep) -> SyncReport:
    if not exists("customers", ref, session=session):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no customer {ref!r}")
    return _sync({"remove": {"customers": [ref]}}, session)


@router.get("/shift-patterns", summary="Weekly shift patterns")
def list_shift_patterns(session: SessionDep) -> list[dict[str, Any]]:
    return export_document(session=session, tz=get_settings().company_timezone)["shift_patterns"]  # type: ignore[no-any-return]


@router.put("/shift-patterns", response_model=SyncReport, summary="Create or update shift patterns")
def put_shift_patterns(body: list[ShiftPatternIn], session: SessionDep) -> SyncReport:
    """Changing a pattern changes the weekly hours of every technician on it."""
    return _sync({"shift_patterns": [p.model_dump(mode="json") for p in body]}, session)


@router.delete("/shift-patterns/{name}", response_model=SyncReport, summary="Remove an unused shift pattern")
def delete_shift_pattern(name: str, session: SessionDep) -> SyncReport:
    if not exists("shift_patterns", name, session=session):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no shift pattern {name!r}")
    return _sync({"remove": {"shift_patterns": [name]}}, session)


@router.get("/memberships", summary="Memberships")
def list_memberships(session: SessionDep) -> list[dict[str, Any]]:
    return export_document(session=session, tz=get_settings().company_timezone).get("memberships", [])  # type: ignore[no-any-return]


@router.put("/memberships", response_model=SyncReport, summary="Create or update memberships")
def put_memberships(body: list[MembershipIn], session: SessionDep) -> SyncReport:
    """``technician``, ``territory``, ``kind``, ``from``, ``until``, radius (docs/rules.md); a membership
    restated with the same start is updated, never duplicated. Remove one with ``PUT /company`` and
    ``{"remove": {"memberships": [{technician, territory, kind, from}]}}``."""
    return _sync({"memberships": [m.model_dump(mode="json", by_alias=True, exclude_none=True) for m in body]},
                 session)


@router.get("/territories", summary="Territories")
def list_territories(session: SessionDep) -> list[dict[str, Any]]:
    """Name, time zone, parent, GeoJSON and visiting hours (docs/rules.md); set them with ``PUT /company``."""
    return export_document(session=session, tz=get_settings().company_timezone).get("territories", [])  # type: ignore[no-any-return]


@router.delete("/territories/{name}", response_model=SyncReport, summary="Remove an unused territory",
               responses={409: {"model": ErrorOut, "description": "The territory is still used: the answer names "
                                                                   "the memberships, child territories or policies"}})
def delete_territory(name: str, session: SessionDep) -> SyncReport:
    """Removes the territory and its own scheduling policy; refused (409) while a membership, a child territory
    or a policy uses it (remove those first, or together in ``PUT /company``'s ``remove``)."""
    if not exists("territories", name, session=session):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no territory {name!r}")
    try:
        return sync({"remove": {"territories": [name]}}, session=session, tz=get_settings().company_timezone)
    except (CompanyImportError, RulesConfigError) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, "; ".join(exc.errors)) from None
