"""What a dispatch worker no longer spends per request in a burst (docs/operations.md, "What a burst costs"):
Prefect's settings built once, Prefect's routine task-completion lines not shipped, no CA store loaded for a
plain SMTP send; and each of these still does what it replaced."""

from __future__ import annotations

import logging
import ssl
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from flows.dispatch import quiet_routine_task_logs, without_flow_heartbeats
from tests.test_delivery import SmtpSink
from truckroll.notifications import delivery
from truckroll.notifications.delivery import _LazySSLContext


def test_dispatch_runs_have_no_heartbeat_and_reuse_one_settings_copy() -> None:
    from prefect.context import get_settings_context
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    outside = get_current_settings()
    with without_flow_heartbeats():
        first = get_current_settings()
        assert first.flows.heartbeat_frequency is None
    with without_flow_heartbeats():
        second = get_current_settings()
    # The copy is made once, not per run; leaving the context restores the worker's own settings.
    assert second is first
    assert get_settings_context().settings is outside
    assert outside.flows.heartbeat_frequency == get_current_settings().flows.heartbeat_frequency
    # A task worker gets new but equal settings with every hand-over: the same copy serves them.
    with temporary_settings(updates={}) as equal:
        assert equal is not outside
        with without_flow_heartbeats():
            assert get_current_settings() is first
    # Other settings get a copy of their own, with their values and still no heartbeat.
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}), without_flow_heartbeats():
        other = get_current_settings()
        assert other is not first and other.api.url == "http://127.0.0.1:9/api"
        assert other.flows.heartbeat_frequency is None


@pytest.fixture
def task_run_records() -> Iterator[list[logging.LogRecord]]:
    logger = logging.getLogger("prefect.task_runs")
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    filters = list(logger.filters)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)
    logger.filters[:] = filters


def test_routine_task_completions_are_dropped_and_everything_else_kept(
        task_run_records: list[logging.LogRecord]) -> None:
    logger = logging.getLogger("prefect.task_runs")
    quiet_routine_task_logs()
    quiet_routine_task_logs()  # installed once, however often the worker asks
    assert sum(type(f).__name__ == "_RoutineTaskCompletions" for f in logger.filters) == 1
    old_level = logger.level
    logger.setLevel(logging.INFO)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Prefect's API handler: these lines belong to no flow run
        logger.info("Finished in state Completed()")
        logger.info("Finished in state Completed('Escalated')")
        logger.error("Finished in state Failed('Task run encountered an exception OperationalError')")
        logger.info("Finished in state Cancelled()")
        logger.warning("3 message(s) not delivered and left pending")
        logger.info("Task run failed with exception: OperationalError - Retry 1/3 will start 0.5 second(s) from now")
    logger.setLevel(old_level)
    kept = [r.getMessage() for r in task_run_records]
    assert not any(m.startswith("Finished in state Completed(") for m in kept)
    assert len(kept) == 4 and kept[0].startswith("Finished in state Failed")


def test_plain_smtp_sends_load_no_ca_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """apprise's email plugin built (and threw away) a verified SSL context per message, even for plain SMTP."""
    from models import Notification

    loads: list[Any] = []
    real = ssl.SSLContext.load_default_certs

    def counting(self: ssl.SSLContext, *args: Any, **kwargs: Any) -> Any:
        loads.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_default_certs", counting)
    sink = SmtpSink()
    try:
        note = Notification(channel="email", recipient="dana@example.net", recipient_kind="customer",
                            dedupe_key="t:lazy-ssl",
                            template="customer_arrival_window", subject="Your visit", body="Tomorrow 10:00-12:00")
        delivery.send_with_apprise(sink.url() + "&to=dana@example.net", note)
        delivery.send_with_apprise(sink.url() + "&to=dana@example.net", note)
    finally:
        sink.controller.stop()
    assert len(sink.messages) == 2
    assert sink.messages[0][2]["Subject"] == "Your visit"
    assert loads == []


def test_a_secured_connection_still_gets_a_verified_context() -> None:
    verified = _LazySSLContext()
    assert verified.verify_mode == ssl.CERT_REQUIRED and verified.check_hostname is True
    assert isinstance(verified._context(), ssl.SSLContext)
    # What apprise does when told not to verify: the settings apply in order to the context made later.
    unverified = _LazySSLContext()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    assert unverified.verify_mode == ssl.CERT_NONE and unverified.check_hostname is False


def test_bench_ops_reads_the_cpu_of_the_stack_processes_by_part() -> None:
    """``truckroll bench ops`` reports CPU per request from /proc: a process of the stack that burns CPU counts
    in its part; a process outside the stack does not."""
    import os
    import subprocess
    import sys
    import uuid

    from bench.ops import stack_cpu

    stack_id = uuid.uuid4().hex
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.6: pass\nimport sys\n" \
           "sys.stdin.read()"
    inside = subprocess.Popen([sys.executable, "-c", burn], stdin=subprocess.PIPE,
                              env={**os.environ, "TRUCKROLL_STACK_ID": stack_id})
    outside = subprocess.Popen([sys.executable, "-c", burn], stdin=subprocess.PIPE,
                               env={k: v for k, v in os.environ.items() if k != "TRUCKROLL_STACK_ID"})
    try:
        import time

        deadline = time.monotonic() + 30
        cpu = stack_cpu(stack_id)
        while cpu.get("other", 0.0) < 0.5 and time.monotonic() < deadline:
            time.sleep(0.2)
            cpu = stack_cpu(stack_id)
        assert set(cpu) == {"other"}
        assert 0.5 <= cpu["other"] < 1.1  # the one burner of the stack, not the other
    finally:
        for p in (inside, outside):
            assert p.stdin is not None
            p.stdin.close()
            p.wait(10)
