"""Dispatch rules: territories, memberships and policies (read and load), and why a technician cannot take a
request. Writes take the configuration format of docs/rules.md and are validated whole: a bad item refuses
the request with every error named (422) and nothing is changed."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, HTTPException, status
from sqlmodel import col, select

from models.territory_tables import SchedulingPolicy, TechnicianMembership, Territory, TravelPolicyRecord
from service.deps import SessionDep
from truckroll import store
from truckroll.explain import why_not
from truckroll.rules_config import RulesConfigError, load_rules
from truckroll.settings import get_settings
from truckroll.travel import get_travel_provider

router = APIRouter(tags=["rules"])


def _load(document: dict[str, Any], session: SessionDep) -> dict[str, Any]:
    try:
        report = load_rules(document, session=session)
    except RulesConfigError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY,
                            {"message": "refused; nothing was changed", "errors": exc.errors}) from None
    return {"loaded": {k: n for k, n in report.counts.items() if n}}


def _items(body: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return body if isinstance(body, list) else [body]


@router.post("/rules", status_code=status.HTTP_201_CREATED, summary="Load a whole rules document")
def post_rules(session: SessionDep, document: dict[str, Any] = Body(...)) -> dict[str, Any]:
    """Territories, memberships, shifts, operating hours, absences and policies in one document (docs/rules.md)."""
    return _load(document, session)


@router.get("/territories", summary="Service territories")
def get_territories(session: SessionDep) -> list[dict[str, Any]]:
    """Every territory with its parent, level, time zone, visiting hours and GeoJSON boundary."""
    return [t.model_dump() for t in session.exec(select(Territory).order_by(Territory.level, Territory.name)).all()]


@router.post("/territories", status_code=status.HTTP_201_CREATED, summary="Add or update territories")
def post_territories(session: SessionDep,
                     body: dict[str, Any] | list[dict[str, Any]] = Body(...)) -> dict[str, Any]:
    """One territory or a list, matched by name (``geojson`` or ``polygon``, ``parent``, ``timezone``,
    ``visiting_hours``)."""
    return _load({"territories": _items(body)}, session)


@router.get("/memberships", summary="Technicians' territory memberships")
def get_memberships(session: SessionDep, technician_id: int | None = None) -> list[dict[str, Any]]:
    q = select(TechnicianMembership).order_by(TechnicianMembership.technician_id, TechnicianMembership.effective_from)
    if technician_id is not None:
        q = q.where(col(TechnicianMembership.technician_id) == technician_id)
    return [m.model_dump(mode="json") for m in session.exec(q).all()]


@router.post("/memberships", status_code=status.HTTP_201_CREATED, summary="Add memberships")
def post_memberships(session: SessionDep,
                     body: dict[str, Any] | list[dict[str, Any]] = Body(...)) -> dict[str, Any]:
    """One membership or a list (``technician``, ``territory``, ``kind``, ``from``, ``until``, radius); an
    overlap with a stored primary is refused."""
    return _load({"memberships": _items(body)}, session)


@router.get("/policies", summary="Scheduling and travel policies")
def get_policies(session: SessionDep) -> dict[str, list[dict[str, Any]]]:
    return {"scheduling": [p.model_dump() for p in session.exec(select(SchedulingPolicy)).all()],
            "travel": [p.model_dump() for p in session.exec(select(TravelPolicyRecord)).all()]}


@router.post("/policies", status_code=status.HTTP_201_CREATED, summary="Set scheduling and travel policies")
def post_policies(session: SessionDep, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    """``{"scheduling": [...], "travel": [...]}``: replaces the policy of each territory or technician named
    (none = the company default)."""
    return _load({"policies": body}, session)


@router.get("/service-requests/{request_id}/why-not/{technician_id}",
            summary="Why (not) this technician for this request")
def get_why_not(request_id: int, technician_id: int, session: SessionDep) -> dict[str, Any]:
    """Every reason, in a dispatcher's words: qualification, territory and radius, availability, visiting and
    closed hours, the utilisation threshold, room in the route."""
    try:
        return why_not(request_id, technician_id, session=session, travel=get_travel_provider(),
                       rules=get_settings().dispatch)
    except store.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
