"""Dependencies the routers share, as ``Annotated`` aliases."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel import Session

from flows.runs import BackgroundDispatcher
from truckroll.db import session_scope


def get_session() -> Iterator[Session]:
    """One transaction per HTTP request: committed when the handler returns, rolled back on an error."""
    with session_scope() as session:
        yield session


def get_dispatcher(request: Request) -> BackgroundDispatcher:
    return request.app.state.dispatcher  # type: ignore[no-any-return]


SessionDep = Annotated[Session, Depends(get_session)]
DispatcherDep = Annotated[BackgroundDispatcher, Depends(get_dispatcher)]
