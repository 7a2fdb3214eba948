"""The webhook signature (timestamp, tolerance, rotation, replays), idempotency, the start-up guard, and input
bounds: ids, dates, NUL characters, non-finite numbers and body sizes give 4xx, never 5xx."""

from __future__ import annotations

import json
import threading
import time

import pytest
from fastapi.testclient import TestClient

from tests import factories as f
from tests.service.conftest import SECRET, RecordingRun, count_requests, post_request, signed

URL = "/service-requests"


def test_replayed_delivery_is_401_whatever_its_idempotency_key(client: TestClient, recorder: RecordingRun) -> None:
    """A captured delivery sent again, with a new Idempotency-Key or none, creates nothing (it created and
    dispatched a new job every time)."""
    body = json.dumps(f.request_payload())
    headers = signed(body)
    assert client.post(URL, content=body, headers=headers | {"Idempotency-Key": "a"}).status_code == 202
    for extra in ({"Idempotency-Key": "b"}, {}):
        r = client.post(URL, content=body, headers=headers | extra)
        assert r.status_code == 401 and "replayed" in r.text
    assert f.wait_until(lambda: recorder.started)
    assert count_requests() == 1 and len(recorder.started) == 1


def test_stale_or_future_signatures_are_401(client: TestClient) -> None:
    body = json.dumps(f.request_payload())
    for skew in (-301, 301, -10_000):
        r = client.post(URL, content=body, headers=signed(body, timestamp=int(time.time()) + skew))
        assert r.status_code == 401 and "timestamp" in r.text
    assert client.post(URL, content=body, headers=signed(body, timestamp=int(time.time()) - 250)).status_code == 202
    # The old format (body only) is refused.
    old = {"Content-Type": "application/json", "X-Truckroll-Signature": "sha256=" + "0" * 64}
    assert client.post(URL, content=body, headers=old).status_code == 401
    assert count_requests() == 1


def test_several_secrets_are_accepted_for_rotation(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from truckroll.settings import get_settings

    monkeypatch.setenv("TRUCKROLL_WEBHOOK_SECRETS", json.dumps(["new-secret", SECRET]))
    get_settings.cache_clear()
    one, two, three = (json.dumps(f.request_payload(customer_name=n)) for n in ("A", "B", "C"))
    assert client.post(URL, content=one, headers=signed(one, secret="new-secret")).status_code == 202
    assert client.post(URL, content=two, headers=signed(two, secret=SECRET)).status_code == 202
    assert client.post(URL, content=three, headers=signed(three, secret="retired")).status_code == 401
    assert count_requests() == 2


def test_replays_are_refused_across_instances(client: TestClient, company: dict[str, int], recorder: RecordingRun
                                              ) -> None:
    """Two service instances on one database: a delivery accepted by one is a replay at the other."""
    from flows.runs import BackgroundDispatcher
    from service.app import create_app

    other = create_app(dispatcher=BackgroundDispatcher(mode="in-process", run=recorder), init_database=False,
                       sweep_interval_seconds=0)
    body = json.dumps(f.request_payload())
    headers = signed(body)
    assert client.post(URL, content=body, headers=headers).status_code == 202
    with TestClient(other) as second:
        assert second.post(URL, content=body, headers=headers).status_code == 401
    assert count_requests() == 1


def test_service_refuses_to_start_with_the_default_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from service.app import create_app
    from truckroll.settings import get_settings

    monkeypatch.delenv("TRUCKROLL_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("TRUCKROLL_DEVELOPMENT", "false")
    get_settings.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="default 'change-me'"):
            create_app(init_database=False)
        monkeypatch.setenv("TRUCKROLL_WEBHOOK_SECRET", "a-real-one")
        get_settings.cache_clear()
        create_app(init_database=False)
    finally:
        get_settings.cache_clear()


def test_concurrent_duplicates_get_the_first_answer_or_422(client: TestClient, recorder: RecordingRun) -> None:
    """Eight deliveries of one key at once: same body -> one row, every answer names it; meanwhile the same key
    with another body never creates anything."""
    payload = f.request_payload()
    answers: list[tuple[int, int]] = []

    def deliver(p: dict[str, object]) -> None:
        r = post_request(client, p, key="race-1")
        answers.append((r.status_code, r.json().get("request_id", -1) if r.status_code == 202 else -1))

    threads = [threading.Thread(target=deliver, args=(payload,)) for _ in range(8)]
    threads += [threading.Thread(target=deliver, args=(f.request_payload(customer_name="Other"),))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    ok = [rid for code, rid in answers if code == 202]
    assert count_requests() == 1
    assert f.wait_until(lambda: recorder.started)
    assert len(set(ok)) == 1 and len(recorder.started) == 1
    assert all(code in (202, 409, 422) for code, _ in answers)


@pytest.mark.parametrize("path", ["/service-requests/{big}", "/technicians/{big}/schedule?date=2030-01-07",
                                  "/service-requests/1/why-not/{big}", "/memberships?technician_id={big}",
                                  "/service-requests/0", "/service-requests/-1"])
def test_ids_outside_the_column_range_are_422(client: TestClient, path: str) -> None:
    for big in (2**31, 2**63, 10**30):
        r = client.get(path.format(big=big))
        assert r.status_code == 422, (path, r.text)


def test_bad_dates_numbers_and_nul_characters_are_422(client: TestClient, company: dict[str, int]) -> None:
    tid = company["ana"]
    for day in ("0001-01-01", "9999-12-31", "1999-12-31"):
        assert client.get("/capacity", params={"date": day}).status_code == 422
        assert client.get(f"/technicians/{tid}/schedule", params={"date": day}).status_code == 422
    for bad in ("Infinity", "-Infinity", "NaN", "1e309"):
        body = json.dumps(f.request_payload(estimated_value=123.25)).replace("123.25", bad)
        r = client.post(URL, content=body, headers=signed(body))
        assert r.status_code == 422 and "finite" in r.text, (bad, r.text)
        r = client.post("/availability", content=body.encode(), headers={"Content-Type": "application/json"})
        assert r.status_code == 422
    nul = json.dumps(f.request_payload(customer_name="Dana\u0000Reyes"))
    r = client.post(URL, content=nul, headers=signed(nul))
    assert r.status_code == 422 and "NUL" in r.text
    assert client.get("/escalations", params={"state": "open\x00"}).status_code == 422
    assert client.get("/service-requests/1%00").status_code == 422
    windows = [{"start": "0001-01-01T00:00:00+01:00", "end": "0001-01-01T05:00:00+01:00"}]
    ok = json.dumps(f.request_payload(time_windows=windows, preferred_technician_ids=[2**63]))
    r = client.post(URL, content=ok, headers=signed(ok))
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["detail"]}
    assert any(x.startswith("time_windows") for x in fields) and any("preferred" in x for x in fields)
    assert count_requests() == 0


def test_every_endpoint_has_a_body_limit(client: TestClient) -> None:
    from truckroll.settings import get_settings

    limit = get_settings().max_body_bytes
    body = b'{"x": "' + b"y" * limit + b'"}'
    for path in ("/availability", "/bookings", "/escalations/1/resolve", "/policies"):
        r = client.post(path, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 413, path

    def chunks():  # no Content-Length: the limit holds while the body streams in
        for _ in range(limit // 65536 + 2):
            yield b"y" * 65536

    r = client.post("/rules", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_rules_with_dates_at_the_calendars_ends_are_422(client: TestClient, company: dict[str, int]) -> None:
    """A shift in year 1 overflowed when stored (500); an absence to 9999-12-31 likewise: now 422, nothing changed."""
    shift = {"shifts": [{"technician": "Ana", "start": "0001-01-01T00:00:00+01:00",
                         "end": "0001-01-01T05:00:00+01:00"}]}
    absence = {"absences": [{"technician": "Ana", "start": "2030-01-01T00:00:00+00:00",
                             "end": "9999-12-31T23:00:00-01:00"}]}
    for doc in (shift, absence):
        r = client.post("/rules", json=doc)
        assert r.status_code == 422 and "between 2000 and 2200" in r.text, r.text
    assert client.get("/audit").json() == []
