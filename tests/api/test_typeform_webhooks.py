"""`POST /events/typeform`: Typeform's signed webhook lands a response as a raw record.

The happy path runs end to end over real sockets: the sandbox's own webhook sender delivers a new
response to `crm-hub serve`'s app (uvicorn on loopback), the record lands as the polling
connector lands it, and the map stage turns it into a source customer. The refusals go through
the ASGI test client with bodies signed by the sandbox's signing code.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from connectors.sandbox import SandboxServer
from connectors.sandbox.webhooks import build_signed_webhook
from crm_hub.api import create_app
from crm_hub.api.webhooks import response_record
from crm_hub.config import HubConfig, load_config
from crm_hub.store import Store
from crm_hub.store.runs import utcnow
from crm_hub.store.schema import raw_records, source_customers, webhook_events
from crm_hub.sync import sync_source

SECRET = "tf-webhook-secret-81hq2"
TEMPLATE_MAPPING = (
    Path(__file__).resolve().parents[2] / "crm_hub/templates/vendors/mappings/typeform.yaml"
)


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(customers=60, seed=5, enforce_rate_limits=False) as running:
        yield running


def typeform_config(url: str) -> str:
    return json.dumps({"base_url": f"{url}/typeform", "access_token": "sandbox-typeform-token"})


@pytest.fixture
def hub(
    sandbox: SandboxServer, write_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> HubConfig:
    """`forms` takes webhooks; `polled` is the same account read by the connector only."""
    monkeypatch.setenv("TF_WEBHOOK_SECRET", SECRET)
    config = typeform_config(sandbox.url)
    path = write_project(
        f"  forms:\n    type: typeform\n    config: {config}\n    streams: [responses]\n"
        f"    mapping: {TEMPLATE_MAPPING}\n"
        "    webhook_secret: ${TF_WEBHOOK_SECRET}\n    webhook_max_age_seconds: 600\n"
        f"  polled:\n    type: typeform\n    config: {config}\n    streams: [responses]\n"
    )
    return load_config(path)


@pytest.fixture
def client(store: Store, hub: HubConfig) -> Iterator[TestClient]:
    with TestClient(create_app(store, sources=hub.sources)) as test_client:
        yield test_client


@pytest.fixture
def served(store: Store, hub: HubConfig) -> Iterator[str]:
    """The API on a real loopback socket (uvicorn, as `crm-hub serve` runs it)."""
    app = create_app(store, sources=hub.sources)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive()
        threading.Event().wait(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def form_ids(sandbox: SandboxServer) -> list[str]:
    ids: list[str] = httpx.get(f"{sandbox.url}/_sandbox/info").json()["vendors"]["typeform"][
        "form_ids"
    ]
    return ids


def point_webhook(sandbox: SandboxServer, form_id: str, url: str) -> None:
    """What IT does in Typeform's dashboard (or API): the webhook, enabled, with its secret."""
    answer = httpx.put(
        f"{sandbox.url}/typeform/forms/{form_id}/webhooks/crm-hub",
        headers={"Authorization": "Bearer sandbox-typeform-token"},
        json={"url": url, "enabled": True, "secret": SECRET},
    )
    assert answer.status_code == 200, answer.text


def deliver(sandbox: SandboxServer, **body: Any) -> dict[str, Any]:
    """Make the sandbox send a form_response webhook (a new response unless response_id)."""
    answer = httpx.post(f"{sandbox.url}/_sandbox/typeform/deliver", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def landed(store: Store, source: str = "forms") -> dict[str, dict[str, Any]]:
    """Raw `responses` records of ``source`` by key."""
    with store.read() as conn:
        rows = conn.execute(
            select(raw_records.c.record_key, raw_records.c.payload).where(
                raw_records.c.source == source, raw_records.c.stream == "responses"
            )
        ).all()
    return {key: orjson.loads(p) if isinstance(p, (str, bytes)) else p for key, p in rows}


def sandbox_event(sandbox: SandboxServer) -> dict[str, Any]:
    """A fresh form_response event of the sandbox's world (as its sender would build it)."""
    from connectors.sandbox.mutate import add_response
    from connectors.sandbox.webhooks import form_response_event

    world = sandbox.sandbox.context.world
    with world.lock:
        row = add_response(world, 0)
        return form_response_event(world, row)


def post(client: TestClient, body: bytes, signature: str | None) -> Any:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Typeform-Signature"] = signature
    return client.post("/events/typeform", content=body, headers=headers)


def test_sandbox_webhook_over_http_lands_the_response_as_the_connector_would(
    store: Store, hub: HubConfig, sandbox: SandboxServer, served: str
) -> None:
    form = form_ids(sandbox)[0]
    point_webhook(sandbox, form, f"{served}/events/typeform")

    sent = deliver(sandbox, form_id=form)

    assert [d["status"] for d in sent["deliveries"]] == [200]
    records = landed(store)
    assert list(records) == [sent["response_id"]]
    # The connector reads the same response: the webhook's record is the same record, less
    # the metadata (user agent, referer) that only the Responses API has.
    time.sleep(1.1)  # the connector reads up to the last whole second before it starts
    sync_source(store, hub, "polled")
    polled = landed(store, "polled")[sent["response_id"]]
    webhook = records[sent["response_id"]]
    assert set(polled) - set(webhook) == {"metadata"}
    assert {k: polled[k] for k in webhook} == webhook
    # ...so the map stage (the next `crm-hub run`) makes a source customer of it.
    from crm_hub.mapping.stage import map_source

    map_source(store, hub, "forms", workers=1)
    with store.read() as conn:
        mapped = conn.execute(
            select(source_customers.c.source_id).where(source_customers.c.source == "forms")
        ).all()
    assert [row[0] for row in mapped] == [sent["response_id"]]


def test_a_tampered_body_is_401_and_nothing_lands(
    store: Store, client: TestClient, sandbox: SandboxServer
) -> None:
    signed = build_signed_webhook(SECRET, sandbox_event(sandbox))
    tampered = signed.body.replace(b'"hidden":{', b'"hidden":{"customer_id":"x",', 1)
    assert tampered != signed.body

    answer = post(client, tampered, signed.headers["Typeform-Signature"])
    unsigned = post(client, signed.body, None)
    other_secret = build_signed_webhook("not-the-secret", signed.body)

    assert answer.status_code == unsigned.status_code == 401
    assert post(client, signed.body, other_secret.headers["Typeform-Signature"]).status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "urn:crm-hub:problem:bad-signature"
    assert SECRET not in answer.text
    assert landed(store) == {}
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(webhook_events)).scalar_one() == 0


def test_a_replayed_event_id_lands_nothing_twice(
    store: Store, client: TestClient, sandbox: SandboxServer
) -> None:
    event = sandbox_event(sandbox)
    first = build_signed_webhook(SECRET, event)
    # Same event id, different (authentic) content: only the first delivery counts.
    changed = json.loads(json.dumps(event))
    changed["form_response"]["hidden"]["source"] = "replayed"
    second = build_signed_webhook(SECRET, changed)

    answers = [
        post(client, first.body, first.headers["Typeform-Signature"]),
        post(client, second.body, second.headers["Typeform-Signature"]),
        post(client, first.body, first.headers["Typeform-Signature"]),
    ]

    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["status"] for a in answers] == ["landed", "duplicate", "duplicate"]
    records = landed(store)
    assert records == {event["form_response"]["token"]: response_record(event["form_response"])}
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(raw_records)).scalar_one() == 1


def test_a_stale_delivery_is_refused(
    store: Store, hub: HubConfig, sandbox: SandboxServer, served: str
) -> None:
    form = form_ids(sandbox)[0]
    point_webhook(sandbox, form, f"{served}/events/typeform")
    sync_source(store, hub, "polled")  # an old response of the seeded world
    old = min(landed(store, "polled").values(), key=lambda r: r["submitted_at"])

    sent = deliver(sandbox, form_id=old["form_id"], response_id=old["response_id"])
    event = sandbox_event(sandbox)
    event["form_response"]["submitted_at"] = "2099-01-01T00:00:00Z"
    future = build_signed_webhook(SECRET, event)
    with TestClient(create_app(store, sources=hub.sources)) as client:
        ahead = post(client, future.body, future.headers["Typeform-Signature"])

    assert [d["status"] for d in sent["deliveries"]] == [422]
    assert ahead.status_code == 422 and ahead.json()["type"] == "urn:crm-hub:problem:stale-event"
    assert landed(store) == {}


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    ("body", "location"),
    [
        (b"not json", None),
        (b"[1, 2]", None),
        (b'{"event_type": "form_response", "form_response": {}}', "event_id"),
        (
            b'{"event_id": "e1", "event_type": "form_response", '
            b'"form_response": {"token": "t", "submitted_at": "yesterday"}}',
            "form_response.submitted_at",
        ),
    ],
    ids=["not-json", "not-an-object", "no-event-id", "bad-time"],
)
def test_a_signed_but_malformed_body_is_400(
    store: Store, client: TestClient, body: bytes, location: str | None
) -> None:
    signed = build_signed_webhook(SECRET, body)

    answer = post(client, body, signed.headers["Typeform-Signature"])

    assert answer.status_code == 400, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    if location:
        assert location in [e["location"] for e in answer.json()["errors"]]
    assert landed(store) == {}


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_other_event_types_and_sources_and_an_unconfigured_hub(
    store: Store, client: TestClient, sandbox: SandboxServer
) -> None:
    partial = build_signed_webhook(
        SECRET, {"event_id": "p1", "event_type": "form_response_partial"}
    )
    ignored = post(client, partial.body, partial.headers["Typeform-Signature"])
    signed = build_signed_webhook(SECRET, sandbox_event(sandbox))
    polled_only = client.post(
        "/events/typeform?source=polled", content=signed.body, headers=signed.headers
    )
    with TestClient(create_app(store)) as bare:
        unconfigured = bare.post("/events/typeform", content=signed.body, headers=signed.headers)

    assert ignored.status_code == 200 and ignored.json()["status"] == "ignored"
    assert polled_only.status_code == 404  # `polled` has no webhook_secret
    assert unconfigured.status_code == 404
    assert landed(store) == {}


def test_the_window_is_the_source_setting(hub: HubConfig) -> None:
    from crm_hub.api.webhooks import TypeformWebhooks

    receiver = TypeformWebhooks.from_sources(None, hub.sources)  # type: ignore[arg-type]
    assert [(e.source, e.max_age) for e in receiver.endpoints] == [
        ("forms", timedelta(seconds=600))
    ]
    assert SECRET not in repr(receiver.endpoints) and SECRET not in repr(hub.sources["forms"])


def test_event_ids_past_the_window_are_forgotten_and_their_replay_stays_refused(
    store: Store, client: TestClient, sandbox: SandboxServer
) -> None:
    now = utcnow()
    # window 600 s + 300 s of allowed clock skew: 901 s ago is past it, 899 s is not
    with store.begin() as conn:
        conn.execute(
            webhook_events.insert(),
            [
                {"source": "forms", "event_id": "old", "received_at": now - timedelta(seconds=901),
                 "record_key": "r-old"},
                {"source": "forms", "event_id": "recent",
                 "received_at": now - timedelta(seconds=899), "record_key": "r-recent"},
                {"source": "polled", "event_id": "other-source",
                 "received_at": now - timedelta(days=9), "record_key": "r-other"},
            ],
        )  # fmt: skip
    event = sandbox_event(sandbox)
    fresh = build_signed_webhook(SECRET, event)
    replay = sandbox_event(sandbox)  # the pruned event's replay: submitted before its receipt
    replay["event_id"] = "old"
    replay["form_response"]["submitted_at"] = (now - timedelta(seconds=901)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    replayed = build_signed_webhook(SECRET, replay)

    answers = [post(client, s.body, s.headers["Typeform-Signature"]) for s in (fresh, replayed)]

    assert [a.status_code for a in answers] == [200, 422]
    with store.read() as conn:
        kept = set(conn.execute(select(webhook_events.c.event_id)).scalars())
    assert kept == {"recent", "other-source", event["event_id"]}
