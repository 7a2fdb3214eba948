"""Dispatch rules: territories, memberships and policies (read and load), and why a technician cannot take a
request. Writes take the configuration format of docs/rules.md and are validated whole: a bad item refuses
the request with every error named (422) and nothing is changed. Admins write them (each write is in the
audit log); dispatchers read them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, status

from models.security_tables import Role
from service.auth import AUTH_RESPONSES, Admin, Principal, require_roles
from service.deps import SessionDep
from service.errors import ErrorOut
from service.limits import DbId
from truckroll import auth, store
from truckroll.dispatch.whynot import why_not
from truckroll.rules import store as rules_store
from truckroll.rules.config import RulesConfigError, load_rules
from truckroll.settings import get_settings
from truckroll.travel.provider import get_travel_provider

router = APIRouter(tags=["rules"], responses=AUTH_RESPONSES)
Reader = Depends(require_roles(Role.DISPATCHER))
_REFUSED: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorOut, "description": "Refused with every error named; nothing was changed"}}


def _count(node: Any) -> int:
    """Items in a document: every object and list element, at any depth."""
    n, stack = 0, [node]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            n += 1
            stack.extend(value.values())
        elif isinstance(value, list):
            n += len(value)
            stack.extend(v for v in value if isinstance(v, dict | list))
    return n


def _refuse(errors: list[str]) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                         {"message": "refused; nothing was changed", "errors": errors})


def _load(document: dict[str, Any], session: SessionDep, who: Principal, action: str) -> dict[str, Any]:
    limit = get_settings().max_rules_items
    if _count(document) > limit:
        raise _refuse([f"the document holds more than {limit} items (TRUCKROLL_MAX_RULES_ITEMS)"])
    # Files on the server are for `truckroll rules load`; over HTTP the GeoJSON comes in the body.
    if "_base_dir" in document or any(isinstance(t, dict) and "geojson_file" in t
                                      for t in document.get("territories") or [] if isinstance(t, dict)):
        raise _refuse(["geojson_file and _base_dir are for `truckroll rules load`; send the boundary as geojson"])
    try:
        report = load_rules(document, session=session, tz=get_settings().company_timezone)
    except RulesConfigError as exc:
        raise _refuse(exc.errors) from None
    loaded = {k: n for k, n in report.counts.items() if n}
    auth.audit(session, actor=who.name, actor_role=who.role, action=action, target=", ".join(sorted(document)),
               details={"loaded": loaded})
    return {"loaded": loaded}


def _items(body: dict[str, Any] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return body if isinstance(body, list) else [body]


@router.post("/rules", status_code=status.HTTP_201_CREATED, summary="Load a whole rules document",
             responses=_REFUSED)
def post_rules(session: SessionDep, who: Admin, document: dict[str, Any] = Body(...)) -> dict[str, Any]:
    """Territories, memberships, shifts, operating hours, absences and policies in one document (docs/rules.md)."""
    return _load(document, session, who, "rules.loaded")


@router.get("/territories", summary="Service territories", dependencies=[Reader])
def get_territories(session: SessionDep) -> list[dict[str, Any]]:
    """Every territory with its parent, level, time zone, visiting hours and GeoJSON boundary."""
    return [t.model_dump() for t in rules_store.territory_rows(session=session)]


@router.post("/territories", status_code=status.HTTP_201_CREATED, summary="Add or update territories",
             responses=_REFUSED)
def post_territories(session: SessionDep, who: Admin,
                     body: dict[str, Any] | list[dict[str, Any]] = Body(...)) -> dict[str, Any]:
    """One territory or a list, matched by name (``geojson`` or ``polygon``, ``parent``, ``timezone``,
    ``visiting_hours``)."""
    return _load({"territories": _items(body)}, session, who, "rules.territories")


@router.get("/memberships", summary="Technicians' territory memberships", dependencies=[Reader])
def get_memberships(session: SessionDep,
                    technician_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json") for m in rules_store.membership_rows(technician_id, session=session)]


@router.post("/memberships", status_code=status.HTTP_201_CREATED, summary="Add memberships", responses=_REFUSED)
def post_memberships(session: SessionDep, who: Admin,
                     body: dict[str, Any] | list[dict[str, Any]] = Body(...)) -> dict[str, Any]:
    """One membership or a list (``technician``, ``territory``, ``kind``, ``from``, ``until``, radius); an
    overlap with a stored primary is refused."""
    return _load({"memberships": _items(body)}, session, who, "rules.memberships")


@router.get("/policies", summary="Scheduling and travel policies", dependencies=[Reader])
def get_policies(session: SessionDep) -> dict[str, list[dict[str, Any]]]:
    scheduling, travel = rules_store.policy_rows(session=session)
    return {"scheduling": [p.model_dump() for p in scheduling], "travel": [p.model_dump() for p in travel]}


@router.post("/policies", status_code=status.HTTP_201_CREATED, summary="Set scheduling and travel policies",
             responses=_REFUSED)
def post_policies(session: SessionDep, who: Admin, body: dict[str, Any] = Body(...)) -> dict[str, Any]:
    """``{"scheduling": [...], "travel": [...]}``: replaces the policy of each territory or technician named
    (none = the company default)."""
    return _load({"policies": body}, session, who, "rules.policies")


@router.get("/service-requests/{request_id}/why-not/{technician_id}",
            summary="Why (not) this technician for this request", dependencies=[Reader],
            responses={404: {"model": ErrorOut, "description": "No such request or technician"}})
def get_why_not(request_id: DbId, technician_id: DbId, session: SessionDep) -> dict[str, Any]:
    """Every reason, in a dispatcher's words: qualification, territory and radius, availability, visiting and
    closed hours, the utilisation threshold, room in the route."""
    try:
        return why_not(request_id, technician_id, session=session, travel=get_travel_provider(get_settings()),
                       rules=get_settings().dispatch, tz=get_settings().company_timezone)
    except store.NotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
