"""Dependencies the routers share, as ``Annotated`` aliases."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import Annotated

from fastapi import BackgroundTasks, Depends, Request
from sqlmodel import Session

from flows.runs import BackgroundDispatcher
from truckroll.db import session_scope

log = logging.getLogger(__name__)


def get_session() -> Iterator[Session]:
    """One transaction per HTTP request: committed when the handler returns, rolled back on an error."""
    with session_scope() as session:
        yield session


def get_dispatcher(request: Request) -> BackgroundDispatcher:
    return request.app.state.dispatcher  # type: ignore[no-any-return]


def deliver_now(notification_ids: list[int]) -> None:
    """Send these messages of the outbox (a failed send is retried by the deliver-notifications deployment)."""
    from truckroll.notifications import delivery
    from truckroll.settings import get_settings

    try:
        report = delivery.deliver_pending(settings=get_settings(), notification_ids=notification_ids)
    except Exception:  # noqa: BLE001 - the answer is given; the messages stay in the outbox for the next drain
        log.exception("delivering notifications %s failed; they stay in the outbox", notification_ids)
        return
    log.info("notifications %s: %s", notification_ids, report.as_dict())


class Outbox:
    """The messages an action queued go out right after its answer, in this process (a console action, a
    technician's report, a dispatcher's resolution: the customer hears of a new ETA within seconds, not at the
    next scheduled drain)."""

    def __init__(self, background: BackgroundTasks) -> None:
        self.background = background

    def deliver(self, notification_ids: Iterable[int]) -> None:
        ids = sorted({int(i) for i in notification_ids if i})
        if ids:
            self.background.add_task(deliver_now, ids)


SessionDep = Annotated[Session, Depends(get_session)]
DispatcherDep = Annotated[BackgroundDispatcher, Depends(get_dispatcher)]
OutboxDep = Annotated[Outbox, Depends(Outbox)]
