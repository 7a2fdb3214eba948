"""The shape of every error answer, as the OpenAPI schema documents it."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException, status
from pydantic import BaseModel


class ErrorOut(BaseModel):
    """``detail`` is a message, or a list/object naming every failing field."""

    detail: Any = None


def manual_assignment_refused(technician_id: int, reasons: list[str], overridable: Any) -> HTTPException:
    """The 409 of a dispatcher's assignment (resolve, reassign) the technician cannot take: the reasons, and the
    rules an override with a reason would lift."""
    return HTTPException(status.HTTP_409_CONFLICT, detail={
        "message": f"technician {technician_id} cannot take this request", "reasons": reasons,
        "overridable": overridable})
