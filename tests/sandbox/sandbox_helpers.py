"""Constants and small helpers shared by the sandbox tests (imported as ``sandbox_helpers``)."""

from __future__ import annotations

from typing import Any

import httpx

SEED = 7
CUSTOMERS = 150

AUTH = {
    "square": {"Authorization": "Bearer sandbox-square-token"},
    "typeform": {"Authorization": "Bearer sandbox-typeform-token"},
    "quickbooks": {"Authorization": "Bearer sandbox-quickbooks-token"},
    "hubspot": {"Authorization": "Bearer sandbox-hubspot-token"},
}
MAILCHIMP_AUTH = ("anyone", "sandbox-mailchimp-key-us21")


def qb_path(info: dict[str, Any], tail: str) -> str:
    """Path of a QuickBooks company endpoint."""
    return f"/quickbooks/v3/company/{info['vendors']['quickbooks']['realm_id']}/{tail}"


def qb_query(
    client: httpx.Client, info: dict[str, Any], query: str, token: str | None = None
) -> httpx.Response:
    """Run a QuickBooks query."""
    headers = {"Authorization": f"Bearer {token}"} if token else AUTH["quickbooks"]
    return client.get(qb_path(info, "query"), params={"query": query}, headers=headers)


def square_locations(client: httpx.Client) -> list[str]:
    """All Square location ids."""
    answer = client.get("/square/v2/locations", headers=AUTH["square"])
    answer.raise_for_status()
    return [loc["id"] for loc in answer.json()["locations"]]
