"""Typeform webhooks: verify, de-duplicate and land a ``form_response`` as a raw record.

A delivery is checked in this order, and nothing is parsed before it is authenticated:

1. ``Typeform-Signature: sha256=<base64 HMAC-SHA256(secret, raw body)>`` against the secret of
   every enabled ``type: typeform`` source with a ``webhook_secret`` (or only the one named by
   ``?source=``), in constant time; the source whose secret matches receives it. No match: 401.
2. The body is JSON with ``event_id``, ``event_type`` and a ``form_response`` holding ``token``
   and ``submitted_at``: else 400. Event types other than ``form_response`` are acknowledged and
   ignored.
3. ``submitted_at`` older than the source's ``webhook_max_age_seconds`` (or more than five minutes
   in the future): 422, a replay or a very late retry (the next sync reads the response anyway).
4. One transaction: the event id is recorded in ``webhook_events``; if it was already there the
   delivery is a duplicate and nothing lands. Otherwise the response lands in raw under the
   source's ``responses`` stream, keyed by ``response_id``, shaped as the polling connector
   lands it (the webhook carries no ``metadata``; the next sync adds it). A response already in
   raw (read by a sync) is left as it is. Ids older than the window plus the allowed clock skew
   are deleted in the same transaction: a replay of such an event fails step 3 anyway.

The map stage picks the record up on the next ``crm-hub run`` like any synced one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from crm_hub.api.problems import Problem
from crm_hub.logging import get_logger, register_secret
from crm_hub.store import Store
from crm_hub.store.raw import land_batch
from crm_hub.store.runs import new_run_id, utcnow
from crm_hub.store.schema import raw_records, webhook_events

__all__ = [
    "MAX_BODY_BYTES",
    "SIGNATURE_HEADER",
    "STREAM",
    "TypeformEndpoint",
    "TypeformWebhooks",
    "WebhookOutcome",
    "response_record",
    "sign",
]

SIGNATURE_HEADER = "Typeform-Signature"
STREAM = "responses"
MAX_BODY_BYTES = 1_048_576
FUTURE_SKEW = timedelta(minutes=5)

log = get_logger(__name__)


def sign(secret: str, body: bytes) -> str:
    """The ``Typeform-Signature`` value of ``body``: ``sha256=`` + base64 HMAC-SHA256."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class TypeformEndpoint:
    """One source that takes webhooks: its name, secret and staleness window."""

    source: str
    secret: str
    max_age: timedelta

    def __repr__(self) -> str:
        return f"TypeformEndpoint(source={self.source!r}, secret=***, max_age={self.max_age})"


@dataclass(frozen=True)
class WebhookOutcome:
    """What became of an authentic delivery: ``landed``, ``duplicate``, ``already-landed`` (a
    sync read the response first) or ``ignored`` (not a form response)."""

    status: str
    source: str
    event_id: str
    response_id: str | None = None


def response_record(form_response: Mapping[str, Any]) -> dict[str, Any]:
    """A webhook's ``form_response`` as the connector's ``responses`` record.

    The Responses API item carries ``response_id`` (= ``token``), ``response_type`` and the
    connector adds ``form_id``; the webhook's ``definition`` (the form's questions) is not part
    of a response. Keys the webhook does not send are left out rather than invented.
    """
    record: dict[str, Any] = {
        "response_id": form_response["token"],
        "token": form_response["token"],
        "response_type": "completed",
    }
    for key in ("landed_at", "submitted_at", "hidden", "calculated", "variables", "answers"):
        if key in form_response:
            record[key] = form_response[key]
    if form_response.get("form_id") is not None:
        record["form_id"] = form_response["form_id"]
    return record


class TypeformWebhooks:
    """The receiver of ``POST /events/typeform`` (see the module docstring).

    Args:
        store: the open store.
        endpoints: the sources that take webhooks.
        clock: the current UTC time (injectable for tests).
    """

    def __init__(
        self,
        store: Store,
        endpoints: list[TypeformEndpoint],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.store, self.endpoints, self.clock = store, endpoints, clock
        for endpoint in endpoints:
            register_secret(endpoint.secret)

    @classmethod
    def from_sources(cls, store: Store, sources: Mapping[str, Any]) -> TypeformWebhooks:
        """The receiver for hub.yaml's enabled ``type: typeform`` sources with a secret."""
        endpoints = []
        for name, source in sources.items():
            secret = getattr(source, "webhook_secret", None)
            if source.type == "typeform" and source.enabled and secret is not None:
                max_age = float(getattr(source, "webhook_max_age_seconds", 3600.0))
                endpoints.append(
                    TypeformEndpoint(name, secret.get_secret_value(), timedelta(seconds=max_age))
                )
        return cls(store, endpoints)

    def receive(self, body: bytes, signature: str | None, source: str | None) -> WebhookOutcome:
        """Verify, check and land one delivery.

        Raises:
            Problem: 404 no source takes webhooks (or not the one named), 401 bad signature,
                400 malformed payload, 413 too large, 422 stale.
        """
        endpoint = self._authenticate(body, signature, source)
        event = _parse(body)
        event_id = event["event_id"]
        if event["event_type"] != "form_response":
            log.info(
                "webhook event ignored", source=endpoint.source, event_type=event["event_type"]
            )
            return WebhookOutcome("ignored", endpoint.source, event_id)
        form_response = event["form_response"]
        self._check_fresh(endpoint, form_response["submitted_at"])
        record = response_record(form_response)
        status = self._land(endpoint, event_id, record)
        log.info("webhook event received", source=endpoint.source, status=status)
        return WebhookOutcome(status, endpoint.source, event_id, record["response_id"])

    def _authenticate(
        self, body: bytes, signature: str | None, source: str | None
    ) -> TypeformEndpoint:
        candidates = [e for e in self.endpoints if source is None or e.source == source]
        if not candidates:
            which = f"source {source!r}" if source else "any source"
            raise Problem(
                404,
                "not-found",
                f"webhooks are not set up for {which}: set webhook_secret on a type: typeform "
                "source in hub.yaml and restart crm-hub serve",
            )
        if len(body) > MAX_BODY_BYTES:
            raise Problem(413, "payload-too-large", f"the body exceeds {MAX_BODY_BYTES} bytes")
        presented = (signature or "").strip().encode("ascii", "replace")
        matched = None
        for endpoint in candidates:  # every candidate is compared: no early exit on a match
            if hmac.compare_digest(sign(endpoint.secret, body).encode("ascii"), presented):
                matched = matched or endpoint
        if matched is None:
            raise Problem(
                401,
                "bad-signature",
                f"the {SIGNATURE_HEADER} header is missing or does not match the body signed "
                "with the webhook secret",
            )
        return matched

    def _check_fresh(self, endpoint: TypeformEndpoint, submitted_at: str) -> None:
        moment = _instant(submitted_at)
        now = self.clock()
        if now - moment > endpoint.max_age:
            raise Problem(
                422,
                "stale-event",
                f"the response was submitted at {submitted_at}, more than "
                f"{endpoint.max_age.total_seconds():g} s ago (webhook_max_age_seconds); the next "
                "sync reads it",
            )
        if moment - now > FUTURE_SKEW:
            raise Problem(
                422, "stale-event", f"submitted_at {submitted_at} is in the future; check clocks"
            )

    def _land(self, endpoint: TypeformEndpoint, event_id: str, record: dict[str, Any]) -> str:
        payload = orjson.dumps(record, option=orjson.OPT_SORT_KEYS, default=str)
        digest = hashlib.blake2b(payload, digest_size=16).hexdigest()  # as the sync stage hashes
        key, source = str(record["response_id"]), endpoint.source
        now = self.clock()
        with self.store.begin() as conn:
            _forget_expired(conn, source, now - endpoint.max_age - FUTURE_SKEW)
            if not _record_event(conn, source, event_id, key, now):
                return "duplicate"
            if _has_record(conn, source, key):
                return "already-landed"
            land_batch(
                conn, source, STREAM, {key: (digest, payload.decode(), False)},
                run_id=new_run_id(), now=now,
            )  # fmt: skip
        return "landed"


def _parse(body: bytes) -> dict[str, Any]:
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise Problem(400, "invalid-request", "the body is not JSON") from None
    if not isinstance(event, dict):
        raise Problem(400, "invalid-request", "the body is not a JSON object")
    problems = []
    for field in ("event_id", "event_type"):
        if not isinstance(event.get(field), str) or not event[field]:
            problems.append({"location": field, "message": "a non-empty string is required"})
    form_response = event.get("form_response")
    if event.get("event_type") == "form_response":
        if not isinstance(form_response, dict):
            problems.append({"location": "form_response", "message": "an object is required"})
        else:
            for field in ("token", "submitted_at"):
                value = form_response.get(field)
                if not isinstance(value, str) or not value:
                    problems.append(
                        {
                            "location": f"form_response.{field}",
                            "message": "a non-empty string is required",
                        }
                    )
            submitted = form_response.get("submitted_at")
            if isinstance(submitted, str) and submitted and _instant_or_none(submitted) is None:
                problems.append(
                    {
                        "location": "form_response.submitted_at",
                        "message": "an ISO 8601 time with a zone is required",
                    }
                )
    if isinstance(event.get("event_id"), str) and len(event["event_id"]) > 255:
        problems.append({"location": "event_id", "message": "at most 255 characters"})
    if problems:
        raise Problem(
            400, "invalid-request", "the webhook payload is not a Typeform event", errors=problems
        )
    return event


def _instant_or_none(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo is not None else None


def _instant(text: str) -> datetime:
    moment = _instant_or_none(text)
    assert moment is not None  # checked by _parse
    return moment


def _record_event(conn: Connection, source: str, event_id: str, key: str, now: datetime) -> bool:
    """Insert the event id; False when it was already there (a duplicate delivery)."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(webhook_events)
        .values(source=source, event_id=event_id, received_at=now, record_key=key)
        .on_conflict_do_nothing(index_elements=["source", "event_id"])
        .returning(webhook_events.c.event_id)  # rowcount is not reliable here on psycopg
    )
    return conn.execute(statement).first() is not None


def _forget_expired(conn: Connection, source: str, before: datetime) -> None:
    """Drop event ids received before ``before``: their responses were submitted at most
    FUTURE_SKEW after receipt, so any replay of them is now older than the window (step 3)."""
    conn.execute(
        delete(webhook_events).where(
            webhook_events.c.source == source, webhook_events.c.received_at < before
        )
    )


def _has_record(conn: Connection, source: str, key: str) -> bool:
    found = conn.execute(
        select(raw_records.c.id).where(
            raw_records.c.source == source,
            raw_records.c.stream == STREAM,
            raw_records.c.record_key == key,
        )
    ).first()
    return found is not None
