"""The shape of every error answer, as the OpenAPI schema documents it."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorOut(BaseModel):
    """``detail`` is a message, or a list/object naming every failing field."""

    detail: Any = None
