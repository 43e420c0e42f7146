"""HubSpot's way of speaking HTTP: its error body, property selection, argument checks."""

from __future__ import annotations

import uuid
from typing import Any

from connectors.sandbox import hubspot_records as records
from connectors.sandbox.routing import Response, json_response


def error(status: int, category: str, message: str, **extra: Any) -> Response:
    """HubSpot's error body."""
    payload = {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }
    return json_response(status, payload)


class SearchError(Exception):
    """A search body HubSpot would refuse (or the sandbox does not emulate)."""


def requested_properties(values: list[str] | None) -> tuple[str, ...]:
    """Property names from ``properties`` query values or body lists (default set when none)."""
    names: list[str] = []
    for value in values or []:
        names += [n.strip() for n in value.split(",") if n.strip()]
    return tuple(names) or records.DEFAULT_PROPERTIES


def present(body: dict[str, Any], properties: tuple[str, ...]) -> dict[str, Any]:
    """A contact with only the requested properties (plus id, create and modify dates)."""
    wanted = set(properties) | {"hs_object_id", "createdate", "lastmodifieddate"}
    out = {k: v for k, v in body.items() if k != "properties"}
    out["properties"] = {
        k: body["properties"].get(k) for k in sorted(wanted) if k in records.ALL_PROPERTIES
    }
    return out


def limit_arg(raw: Any, default: int, maximum: int) -> int | Response:
    """A page size between 1 and ``maximum`` (``default`` when absent), or HubSpot's 400."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return error(400, "VALIDATION_ERROR", f"limit must be an integer, got {raw!r}")
    if not 1 <= value <= maximum:
        return error(400, "VALIDATION_ERROR", f"limit must be between 1 and {maximum}, got {value}")
    return value
