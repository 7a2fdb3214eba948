"""POST /service-requests: signature, idempotency, validation, bad input; GET /service-requests/{id}."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from models import ServiceRequest
from tests import factories as f
from tests.service.conftest import SECRET, RecordingRun, count_requests, post_request, signed
from truckroll.db import session_scope


def test_signed_request_is_accepted_persisted_and_handed_to_dispatch(client: TestClient,
                                                                     recorder: RecordingRun) -> None:
    """A correctly signed, valid request answers 202 with its id and status URL, is stored, and its flow starts."""
    r = post_request(client, f.request_payload())
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["created"] is True and body["status_url"] == f"/service-requests/{body['request_id']}"
    assert count_requests() == 1
    client.get("/healthz")  # the dispatcher thread has had its turn by the time a later request is served
    for _ in range(100):
        if recorder.started:
            break
        client.get("/healthz")
    assert recorder.started == [body["request_id"]]
    status = client.get(body["status_url"]).json()
    assert status["status"] == "received" and status["assignment"] is None


def test_same_idempotency_key_returns_same_id_and_creates_nothing(client: TestClient, recorder: RecordingRun) -> None:
    """Deliveries with one Idempotency-Key: one row, one id, one flow start; the replays say so; the same key
    with another body is refused (422) and changes nothing."""
    first = post_request(client, f.request_payload(), key="order-42")
    again = post_request(client, f.request_payload(), key="order-42")
    third = post_request(client, f.request_payload(customer_name="Someone Else"), key="order-42")
    assert first.status_code == again.status_code == 202
    assert first.json()["request_id"] == again.json()["request_id"]
    assert again.json()["created"] is False and again.headers["Idempotent-Replayed"] == "true"
    assert third.status_code == 422 and "another body" in third.text
    assert f.wait_until(lambda: recorder.started)
    assert recorder.started == [first.json()["request_id"]]
    assert count_requests() == 1
    with session_scope() as s:
        assert s.get(ServiceRequest, first.json()["request_id"]).customer_name == "Dana Reyes"  # type: ignore[union-attr]
    other = post_request(client, f.request_payload(), key="order-43")
    assert other.json()["request_id"] != first.json()["request_id"]
    assert count_requests() == 2


def test_missing_or_wrong_signature_is_401_and_writes_nothing(client: TestClient) -> None:
    """No header, a signature with another secret, a malformed header: 401 each time, nothing stored."""
    body = json.dumps(f.request_payload())
    cases = [
        {"Content-Type": "application/json"},
        signed(body, secret="not-the-secret"),
        {"Content-Type": "application/json", "X-Truckroll-Signature": "deadbeef"},
        {"Content-Type": "application/json", "X-Truckroll-Signature": "sha256="},
    ]
    for headers in cases:
        r = client.post("/service-requests", content=body, headers=headers)
        assert r.status_code == 401, (headers, r.text)
    assert count_requests() == 0


def test_replayed_signature_with_changed_body_is_401(client: TestClient) -> None:
    """A captured signature does not authenticate a different body (one character changed)."""
    body = json.dumps(f.request_payload())
    headers = signed(body)
    assert client.post("/service-requests", content=body, headers=headers).status_code == 202
    tampered = body.replace("Dana", "Dina")
    r = client.post("/service-requests", content=tampered, headers=headers)
    assert r.status_code == 401
    assert count_requests() == 1


def test_oversized_body_is_413_and_writes_nothing(client: TestClient) -> None:
    """A body over 64 KiB is refused before it is parsed, also when correctly signed."""
    body = json.dumps(f.request_payload(description="x" * 70_000))
    r = client.post("/service-requests", content=body, headers=signed(body))
    assert r.status_code == 413
    assert count_requests() == 0


def test_wrong_content_type_is_415_and_writes_nothing(client: TestClient) -> None:
    """A signed body sent as text/plain or form data is refused."""
    body = json.dumps(f.request_payload())
    for ctype in ("text/plain", "application/x-www-form-urlencoded", ""):
        headers = signed(body) | {"Content-Type": ctype}
        r = client.post("/service-requests", content=body, headers=headers)
        assert r.status_code == 415, (ctype, r.text)
    assert count_requests() == 0


def test_malformed_json_is_400_and_writes_nothing(client: TestClient) -> None:
    """Signed bytes that are not JSON, or JSON that is not an object, are a 400 naming the problem."""
    for body in ('{"customer_name": "Dana",', "[1, 2, 3]", b"\xff\xfe\x00".decode("latin-1")):
        r = client.post("/service-requests", content=body.encode("latin-1"), headers=signed(body.encode("latin-1")))
        assert r.status_code == 400, (body, r.text)
        assert "JSON" in r.json()["detail"]
    assert count_requests() == 0


def test_unknown_field_is_422_naming_it(client: TestClient) -> None:
    """An unknown field is refused by name; nothing is written."""
    r = post_request(client, f.request_payload(colour="blue"))
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["detail"]] == ["colour"]
    assert count_requests() == 0


def test_invalid_fields_are_422_each_named(client: TestClient) -> None:
    """Every failing field is named: an unknown job type and an unknown preferred technician."""
    r = post_request(client, f.request_payload(job_type="teleportation", preferred_technician_ids=[999]))
    assert r.status_code == 422
    fields = {e["field"] for e in r.json()["detail"]}
    assert fields == {"job_type", "preferred_technician_ids"}
    assert count_requests() == 0


def test_service_keeps_serving_after_bad_input(client: TestClient) -> None:
    """After a run of bad deliveries, a good one is still accepted."""
    body = json.dumps(f.request_payload())
    client.post("/service-requests", content=b"{", headers=signed(b"{"))
    client.post("/service-requests", content=body, headers={"Content-Type": "application/json"})
    client.post("/service-requests", content="y" * 100_000, headers=signed("y" * 100_000))
    client.post("/service-requests", content=body, headers=signed(body) | {"Content-Type": "text/xml"})
    r = post_request(client, f.request_payload())
    assert r.status_code == 202
    assert count_requests() == 1


def test_unknown_request_is_404(client: TestClient) -> None:
    """The status of an id that names nothing is a 404."""
    assert client.get("/service-requests/12345").status_code == 404


def test_docs_are_served(client: TestClient) -> None:
    """/docs serves the Swagger UI and the OpenAPI document describes the webhook body."""
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/service-requests"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "customer_name" in body["properties"]
    assert SECRET not in json.dumps(spec)
