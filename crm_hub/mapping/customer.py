"""Normalise a mapped source customer once, here, with ``crm_hub.normalize``.

E-mail: domain lower-cased, provider-aware match key kept apart. Phone: E.164 in the mapping's
default region; invalid numbers kept raw and flagged, never lost. Names: a full name alone is
split (titles, particles). Birth date: with or without year; impossible dates are dropped.
Address: a match key where St = Street; postcodes spaced properly.
"""

from __future__ import annotations

from typing import Any

from crm_hub.normalize import (
    address_line_key,
    normalize_email,
    normalize_phone,
    normalize_postcode,
    parse_birth_date,
    parse_full_name,
    postcode_key,
)

__all__ = ["finish_customer"]


def _emails(row: dict[str, Any]) -> None:
    first, more = row.pop("email", None), row.pop("emails", None)
    if first is not None and not more:  # one address, the common case: what the loop makes
        norm = normalize_email(first)
        email, key, flag = norm.email, norm.match_key, norm.flag
        row["email"], row["email_match_key"], row["email_flag"] = email, key, flag
        row["emails"] = [{"email": email, "match_key": key, "flag": flag}]
        return
    given = [first, *(more or [])]
    found, seen = [], set()
    for raw in given:
        if raw is None or raw in seen:
            continue
        seen.add(raw)
        norm = normalize_email(raw)
        found.append({"email": norm.email, "match_key": norm.match_key, "flag": norm.flag})
    primary = next((e for e in found if e["flag"] is None), found[0] if found else None)
    row["email"] = primary["email"] if primary else None
    row["email_match_key"] = primary["match_key"] if primary else None
    row["email_flag"] = primary["flag"] if primary else "missing"
    row["emails"] = found or None


def _phones(row: dict[str, Any], region: str) -> None:
    first, more = row.pop("phone", None), row.pop("phones", None)
    if first is not None and not more:  # one number, the common case: what the loop makes
        norm = normalize_phone(first, region)
        e164, flag = norm.e164, norm.flag
        row["phone"], row["phone_raw"], row["phone_flag"] = e164, first, flag
        row["phones"] = [{"e164": e164, "raw": first, "flag": flag}]
        return
    given = [first, *(more or [])]
    found, seen = [], set()
    for raw in given:
        if raw is None or raw in seen:
            continue
        seen.add(raw)
        norm = normalize_phone(raw, region)
        found.append({"e164": norm.e164, "raw": raw, "flag": norm.flag})
    primary = next((p for p in found if p["flag"] is None), found[0] if found else None)
    row["phone"] = primary["e164"] if primary else None
    row["phone_raw"] = primary["raw"] if primary else None
    row["phone_flag"] = primary["flag"] if primary else "missing"
    row["phones"] = found or None


def _names(row: dict[str, Any]) -> None:
    full = row.get("full_name")
    if full and not (row.get("first_name") or row.get("last_name")):
        parts = parse_full_name(full)
        row["first_name"], row["middle_name"] = parts.first, parts.middle
        row["last_name"] = parts.last
        row["title"] = row.get("title") or (parts.title[:64] if parts.title else None)
    elif not full:
        joined = " ".join([p for p in (row.get("first_name"), row.get("last_name")) if p])
        row["full_name"] = joined or None


def _birth(row: dict[str, Any]) -> None:
    raw = row.pop("birth_date", None)
    birth = parse_birth_date(raw) if raw else None
    row["birth_year"] = birth.year if birth else None
    row["birth_month"] = birth.month if birth else None
    row["birth_day"] = birth.day if birth else None
    if raw and birth is None:
        row.setdefault("attributes", {})["unusable_birth_date"] = raw


def finish_customer(row: dict[str, Any], region: str) -> None:
    """Fill the derived columns of a source customer row in place."""
    _emails(row)
    _phones(row, region)
    _names(row)
    _birth(row)
    postcode = normalize_postcode(row.get("postcode"))
    row["postcode"] = postcode[:32] if postcode else None
    row["postcode_key"] = (postcode_key(postcode) or "")[:32] or None
    lines = [row.get("address_line1"), row.get("address_line2")]
    row["address_key"] = address_line_key(" ".join([str(x) for x in lines if x])) or None
