"""Mailchimp audience sink: one member upsert per record, tags from segments, archive/erase.

Each record becomes ``PUT /3.0/lists/{list_id}/members/{md5(lower e-mail)}`` with
``status_if_new`` and no ``status`` (except an explicit opt-out, which sets ``unsubscribed``):
Mailchimp applies ``status_if_new`` only when it creates the member, so an existing member's
status, in particular unsubscribed or cleaned, is never changed by a push and nobody is
re-subscribed. The batch-subscribe endpoint (``POST /lists/{id}``) is not used because its
members need an explicit ``status`` that would apply to existing members too.

Records of a batch are sent by a small thread pool (``concurrency``, below Mailchimp's 10
connections); the batch is settled when every record has landed or been rejected.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from singer_sdk.sinks import BatchSink

from connectors.target_common import (
    BatchOutcome,
    Rejection,
    batch_size,
    http_reason,
    jsonable,
    parts_of,
    record_key,
)


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: MD5 of the lower-cased address.

    Example: ``subscriber_hash("Ann@Example.com") == subscriber_hash("ann@example.com")``.
    """
    return hashlib.md5(email.strip().lower().encode("utf-8"), usedforsecurity=False).hexdigest()


class MailchimpSink(BatchSink):
    """Upserts audience members; see the module docstring."""

    def __init__(self, target: Any, stream_name: str, schema: dict[str, Any], key_properties: Any):
        super().__init__(target, stream_name, schema, key_properties)
        self._parts = parts_of(target)

    @property
    def max_size(self) -> int:
        """Records per batch (``batch_size``)."""
        return batch_size(self.config, 100)

    def process_batch(self, context: dict[str, Any]) -> None:
        """Send every record of the batch, then report confirmed and rejected keys."""
        records: list[dict[str, Any]] = context.get("records", [])
        workers = max(1, int(self.config.get("concurrency") or 4))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(self._send_one, records))
        outcome = BatchOutcome()
        for record, refusal in zip(records, results, strict=True):
            if refusal is None:
                outcome.confirmed.append(record_key(record, self.key_properties))
            else:
                outcome.rejected.append(refusal)
        self._parts.reporter.report(self.stream_name, str(context["batch_id"]), outcome)
        self.tally_record_written(len(outcome.confirmed))

    def _member_path(self, email: str) -> str:
        return f"/3.0/lists/{self.config['list_id']}/members/{subscriber_hash(email)}"

    def _send_one(self, record: dict[str, Any]) -> Rejection | None:
        key = record_key(record, self.key_properties)
        email_field = self.config.get("email_field") or "email"
        email = record.get(email_field)
        if not isinstance(email, str) or not email.strip():
            return Rejection(key, f"no e-mail address in field {email_field!r}; not sent")
        if record.get("_erase"):
            return self._delete(key, email, permanent=True)
        if record.get("_deleted"):
            permanent = self.config.get("delete_mode") == "delete_permanent"
            return self._delete(key, email, permanent=permanent)
        return self._upsert(key, email.strip(), record)

    def _delete(self, key: Any, email: str, *, permanent: bool) -> Rejection | None:
        path = self._member_path(email)
        http = self._parts.http
        response = (
            http.request("POST", f"{path}/actions/delete-permanent")
            if permanent
            else http.request("DELETE", path)
        )
        if response.is_success or response.status_code == 404:
            return None  # gone already counts as done
        return Rejection(key, http_reason(response), response.status_code)

    def _upsert(self, key: Any, email: str, record: dict[str, Any]) -> Rejection | None:
        body: dict[str, Any] = {"email_address": email}
        consent = record.get(self.config.get("consent_field") or "email_consent")
        if consent is True:
            body["status_if_new"] = "subscribed"
        elif consent is False:
            body["status_if_new"] = "unsubscribed"
            body["status"] = "unsubscribed"  # an opt-out elsewhere is honoured here too
        else:
            body["status_if_new"] = self.config.get("status_if_new_without_consent") or (
                "transactional"
            )
        merge = self._merge_fields(record)
        if merge:
            body["merge_fields"] = merge
        path = self._member_path(email)
        response = self._parts.http.request("PUT", path, json=body)
        if not response.is_success:
            return Rejection(key, http_reason(response), response.status_code)
        return self._sync_tags(key, path, record, response.json())

    def _merge_fields(self, record: dict[str, Any]) -> dict[str, Any]:
        mapping: dict[str, str] = self.config.get("merge_fields") or {}
        merge: dict[str, Any] = {}
        for tag, field in mapping.items():
            if field not in record:
                continue  # absent: leave Mailchimp's value alone
            value = jsonable(record[field])
            merge[tag] = "" if value is None else value if isinstance(value, dict) else str(value)
        return merge

    def _sync_tags(
        self, key: Any, path: str, record: dict[str, Any], member: dict[str, Any]
    ) -> Rejection | None:
        segments_field = self.config.get("segments_field") or "segments"
        exited_field = self.config.get("segments_exited_field") or "segments_exited"
        if segments_field not in record and exited_field not in record:
            return None
        prefix = str(self.config.get("tag_prefix") or "")
        desired = {prefix + str(s) for s in record.get(segments_field) or []}
        exited = {prefix + str(s) for s in record.get(exited_field) or []}
        current = {str(t.get("name")) for t in member.get("tags") or []}
        managed = {t for t in current if prefix and t.startswith(prefix)}
        add = desired - current
        remove = ((exited | managed) & current) - desired
        if not add and not remove:
            return None
        tags = [{"name": t, "status": "active"} for t in sorted(add)] + [
            {"name": t, "status": "inactive"} for t in sorted(remove)
        ]
        response = self._parts.http.request("POST", f"{path}/tags", json={"tags": tags})
        if response.is_success:
            return None
        return Rejection(key, f"tags: {http_reason(response)}", response.status_code)
