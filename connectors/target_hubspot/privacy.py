"""HubSpot removals and opt-outs: erase (GDPR delete), archive, unsubscribe (CRM v3 APIs).

- **Erase** (``_erase``): ``POST /crm/v3/objects/contacts/gdpr-delete`` ``{objectId: <e-mail>,
  idProperty: "email"}``, one call per contact: HubSpot deletes the contact and its content for
  good and blocklists the address (also when no contact had it).
- **Archive** (``_deleted``: merged away, left a mirrored segment): the record ids of the
  addresses come from ``POST .../contacts/batch/read`` (``idProperty: "email"``), then ``POST
  .../contacts/batch/archive`` (204 whatever each one's state; restorable for 90 days). An address
  HubSpot does not know is gone already: done.
- **Unsubscribe** (the consent field ``false``): ``POST /communication-preferences/v3/
  unsubscribe`` ``{emailAddress, subscriptionId[, legalBasis, legalBasisExplanation]}`` for each
  subscription type (``subscription_ids``, default: every active, non-internal type of ``GET
  /communication-preferences/v3/definitions``, read once). "Already unsubscribed" counts as done.
  v3 cannot subscribe anyone again, and this target never tries.
"""

from __future__ import annotations

from typing import Any

from connectors.target_common import DestinationHttp, Rejection, http_reason

__all__ = ["archive_contacts", "erase_contact", "Unsubscriber"]

_CONTACTS = "/crm/v3/objects/contacts"


def erase_contact(http: DestinationHttp, email: str) -> Rejection | None:
    """GDPR-delete the contact of ``email``; None when done."""
    response = http.request(
        "POST", f"{_CONTACTS}/gdpr-delete", json={"objectId": email, "idProperty": "email"}
    )
    if response.is_success or response.status_code == 404:
        return None
    return Rejection(None, http_reason(response), response.status_code)


def archive_contacts(http: DestinationHttp, emails: list[str]) -> dict[str, Rejection]:
    """Archive the contacts of ``emails`` (≤ 100, lower-cased); refusals by e-mail."""
    if not emails:
        return {}
    inputs = [{"id": email} for email in emails]
    found = http.request(
        "POST", f"{_CONTACTS}/batch/read",
        json={"idProperty": "email", "properties": ["email"], "inputs": inputs},
    )  # fmt: skip
    if found.status_code not in (200, 207):
        return dict.fromkeys(emails, Rejection(None, http_reason(found), found.status_code))
    ids = [str(r["id"]) for r in found.json().get("results") or [] if r.get("id")]
    if not ids:
        return {}  # none of them is in HubSpot any more
    archived = http.request(
        "POST", f"{_CONTACTS}/batch/archive", json={"inputs": [{"id": i} for i in ids]}
    )
    if archived.is_success:
        return {}
    return dict.fromkeys(emails, Rejection(None, http_reason(archived), archived.status_code))


class Unsubscriber:
    """Unsubscribes addresses from the configured (or every active) subscription type."""

    def __init__(self, http: DestinationHttp, config: Any) -> None:
        self.http = http
        self.ids: list[str] | None = [str(i) for i in config.get("subscription_ids") or []] or None
        self.legal = {
            key: config[name]
            for key, name in (("legalBasis", "legal_basis"),
                              ("legalBasisExplanation", "legal_basis_explanation"))
            if config.get(name)
        }  # fmt: skip

    def unsubscribe(self, email: str) -> Rejection | None:
        """Opt ``email`` out of every type; None when done (or done before)."""
        ids = self._subscription_ids()
        if isinstance(ids, Rejection):
            return ids
        for subscription in ids:
            response = self.http.request(
                "POST", "/communication-preferences/v3/unsubscribe",
                json={"emailAddress": email, "subscriptionId": subscription, **self.legal},
            )  # fmt: skip
            if response.is_success or "already unsubscribed" in response.text.lower():
                continue
            return Rejection(None, f"unsubscribe: {http_reason(response)}", response.status_code)
        return None

    def _subscription_ids(self) -> list[str] | Rejection:
        if self.ids is None:
            response = self.http.request("GET", "/communication-preferences/v3/definitions")
            if not response.is_success:
                return Rejection(None, f"subscription types: {http_reason(response)}",
                                 response.status_code)  # fmt: skip
            self.ids = [
                str(d["id"])
                for d in response.json().get("subscriptionDefinitions") or []
                if d.get("isActive", True) and not d.get("isInternal", False)
            ]
        return self.ids
