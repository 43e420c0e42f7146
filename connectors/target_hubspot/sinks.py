"""HubSpot contacts sink: batch upsert by e-mail, mapped properties, list membership.

A batch is ``POST /crm/v3/objects/contacts/batch/upsert`` with ``idProperty: "email"`` (at most
100 inputs). HubSpot answers 200, or 207 with per-input ``errors``: each error names its input
by ``context.ids`` and becomes a rejection with HubSpot's message. Should HubSpot refuse a whole
batch with a 400, the batch is split in halves and resent until the refusing inputs stand alone,
so one bad record never takes 99 good ones with it. Records naming the same e-mail twice in a
batch are merged (the last wins; all their keys share its outcome).

List membership: ``segment_lists`` maps a segment name to a MANUAL list id. For each landed
contact whose record carries the segments field, the contact is added to the lists of its
segments and removed from the other mapped lists (one ``add-and-remove`` call per list).

Removals and opt-outs (:mod:`privacy`): a record with ``_erase`` GDPR-deletes the contact, one
with ``_deleted`` archives it, and one whose consent field (``email_consent``) is ``false`` is
upserted, then unsubscribed from every subscription type. Per address, the batch's last record
decides what happens.
"""

from __future__ import annotations

from collections import defaultdict
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
from connectors.target_hubspot.privacy import Unsubscriber, archive_contacts, erase_contact

BATCH_LIMIT = 100


def property_value(value: Any) -> str:
    """HubSpot takes strings only: ``None`` → ``""`` (clears), booleans lower-case.

    Example: ``property_value(True) == "true"``, ``property_value(12.5) == "12.5"``.
    """
    value = jsonable(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(str(v) for v in value)  # HubSpot's multi-select format
    return str(value)


class HubSpotSink(BatchSink):
    """Upserts contacts; see the module docstring."""

    def __init__(self, target: Any, stream_name: str, schema: dict[str, Any], key_properties: Any):
        super().__init__(target, stream_name, schema, key_properties)
        self._parts = parts_of(target)
        self._unsubscriber = Unsubscriber(self._parts.http, self.config)

    @property
    def max_size(self) -> int:
        """Records per batch (``batch_size``, at most 100)."""
        return min(batch_size(self.config, BATCH_LIMIT), BATCH_LIMIT)

    def process_batch(self, context: dict[str, Any]) -> None:
        """Remove, upsert and unsubscribe the batch's contacts, sync lists, report the keys."""
        records: list[dict[str, Any]] = context.get("records", [])
        email_field = self.config.get("email_field") or "email"
        outcome = BatchOutcome()
        by_email: dict[str, list[dict[str, Any]]] = {}
        for record in records:
            email = record.get(email_field)
            if isinstance(email, str) and email.strip():
                by_email.setdefault(email.strip().lower(), []).append(record)
            else:
                outcome.rejected.append(
                    Rejection(
                        record_key(record, self.key_properties),
                        f"no e-mail address in field {email_field!r}; not sent",
                    )
                )
        last = {email: group[-1] for email, group in by_email.items()}  # the last one wins
        upserts = {e: r for e, r in last.items() if not (r.get("_erase") or r.get("_deleted"))}
        inputs = {email: self._input(record, email) for email, record in upserts.items()}
        landed: dict[str, str] = {}
        refused: dict[str, Rejection] = self._remove(last)
        self._upsert(list(inputs.values()), landed, refused)
        refused.update(self._sync_lists({e: upserts[e] for e in landed}, landed))
        refused.update(self._unsubscribe(upserts, landed))
        for email, group in by_email.items():
            done = email in landed or email not in upserts
            for record in group:
                key = record_key(record, self.key_properties)
                problem = refused.get(email)
                if done and problem is None:
                    outcome.confirmed.append(key)
                else:
                    problem = problem or Rejection(key, "HubSpot returned no result for this input")
                    outcome.rejected.append(Rejection(key, problem.reason, problem.status))
        self._parts.reporter.report(self.stream_name, str(context["batch_id"]), outcome)
        self.tally_record_written(len(outcome.confirmed))

    def _remove(self, last: dict[str, dict[str, Any]]) -> dict[str, Rejection]:
        """Erase (``_erase``) or archive (``_deleted``) contacts; refusals by e-mail."""
        http, email_field = self._parts.http, self.config.get("email_field") or "email"
        refused: dict[str, Rejection] = {}
        for email, record in last.items():
            if record.get("_erase"):
                problem = erase_contact(http, str(record[email_field]).strip())
                if problem is not None:
                    refused[email] = problem
        archive = [e for e, r in last.items() if r.get("_deleted") and not r.get("_erase")]
        refused.update(archive_contacts(http, archive))
        return refused

    def _unsubscribe(
        self, upserts: dict[str, dict[str, Any]], landed: dict[str, str]
    ) -> dict[str, Rejection]:
        """Opt out the landed contacts whose consent field is false."""
        consent_field = self.config.get("consent_field") or "email_consent"
        email_field = self.config.get("email_field") or "email"
        refused: dict[str, Rejection] = {}
        for email, record in upserts.items():
            if email in landed and record.get(consent_field) is False:
                problem = self._unsubscriber.unsubscribe(str(record[email_field]).strip())
                if problem is not None:
                    refused[email] = problem
        return refused

    def _input(self, record: dict[str, Any], email: str) -> dict[str, Any]:
        mapping: dict[str, str] = self.config.get("properties") or {}
        properties = {
            prop: property_value(record[field])
            for prop, field in mapping.items()
            if field in record
        }
        original = str(record[self.config.get("email_field") or "email"]).strip()
        return {"id": original, "idProperty": "email", "properties": properties}

    def _upsert(
        self,
        inputs: list[dict[str, Any]],
        landed: dict[str, str],
        refused: dict[str, Rejection],
    ) -> None:
        if not inputs:
            return
        response = self._parts.http.request(
            "POST", "/crm/v3/objects/contacts/batch/upsert", json={"inputs": inputs}
        )
        if response.status_code in (200, 201, 207):
            body = response.json()
            for result in body.get("results") or []:
                email = str((result.get("properties") or {}).get("email") or "").lower()
                if email:
                    landed[email] = str(result["id"])
            for error in body.get("errors") or []:
                reason = (
                    f"HTTP {response.status_code} item error "
                    f"{error.get('category', 'ERROR')}: {error.get('message', '')}"
                )
                for ident in (error.get("context") or {}).get("ids") or []:
                    refused[str(ident).strip().lower()] = Rejection(None, reason, 400)
            return
        if len(inputs) > 1:  # the whole batch was refused: find the culprits by halves
            middle = len(inputs) // 2
            self._upsert(inputs[:middle], landed, refused)
            self._upsert(inputs[middle:], landed, refused)
            return
        email = str(inputs[0]["id"]).lower()
        refused[email] = Rejection(None, http_reason(response), response.status_code)

    def _sync_lists(
        self, records: dict[str, dict[str, Any]], landed: dict[str, str]
    ) -> dict[str, Rejection]:
        lists: dict[str, str] = self.config.get("segment_lists") or {}
        segments_field = self.config.get("segments_field") or "segments"
        if not lists:
            return {}
        add: dict[str, list[str]] = defaultdict(list)
        remove: dict[str, list[str]] = defaultdict(list)
        emails_of: dict[str, list[str]] = defaultdict(list)
        for email, record in records.items():
            if segments_field not in record:
                continue
            member_of = {str(s) for s in record.get(segments_field) or []}
            for segment, list_id in lists.items():
                (add if segment in member_of else remove)[list_id].append(landed[email])
                emails_of[list_id].append(email)
        refusals: dict[str, Rejection] = {}
        for list_id in sorted(set(add) | set(remove)):
            response = self._parts.http.request(
                "PUT",
                f"/crm/v3/lists/{list_id}/memberships/add-and-remove",
                json={"recordIdsToAdd": add[list_id], "recordIdsToRemove": remove[list_id]},
            )
            if not response.is_success:
                reason = f"list {list_id}: {http_reason(response)}"
                for email in emails_of[list_id]:
                    refusals[email] = Rejection(None, reason, response.status_code)
        return refusals
