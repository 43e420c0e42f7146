"""Finding customers: search terms, merged-id chains and the golden record with its traits.

Search understands four kinds of term, told apart by shape:

* a master id (``m_`` + up to 26 letters and digits): that customer;
* an e-mail (has ``@``): normalised as the map stage does (domain lower-cased), matched as
  given and fully lower-cased;
* a phone (digits with spaces, ``+``, ``-``, ``()``, ``.``, ``/``; at least 6 digits): normalised
  to E.164 in each region the map stage uses (its mappings' ``phone_region``), matched exactly;
* anything else, a name: prefix of the full or last name, case-insensitive; when no name
  starts so, a fuzzy match (typos, missing letters) over names sharing the first two letters.

Phone, e-mail and id are indexed equality lookups (``profiles.phone``, ``profiles.email``, the
primary key).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy import Connection, Select, String, and_, func, literal, or_, select, tuple_

from crm_hub.api.policy import PROFILE_GROUPS, Principal, customer_rows
from crm_hub.normalize.email import normalize_email
from crm_hub.normalize.phone import normalize_phone
from crm_hub.store.schema import masters, profiles, traits

__all__ = [
    "MASTER_ID_PATTERN",
    "PROFILE_FIELDS",
    "TRAIT_FIELDS",
    "SearchTerm",
    "classify",
    "customer_select",
    "follow_merges",
    "load_customer",
    "profile_select",
    "search",
    "split_customer",
]

MASTER_ID_PATTERN = r"^m_[0-9A-Za-z]{1,26}$"
_MASTER_ID = re.compile(MASTER_ID_PATTERN)
_PHONE_SHAPE = re.compile(r"^\+?[\d\s\-().\/]+$")
_MAX_HOPS = 16
_FUZZY_CANDIDATES = 5_000
_FUZZY_CUTOFF = 80.0

PROFILE_FIELDS: tuple[str, ...] = tuple(f for group in PROFILE_GROUPS.values() for f in group)
"""Profile columns the API shows (each in a policy group); bookkeeping columns stay out."""
_BOOKKEEPING = frozenset({"master_id", "change_seq", "run_id", "values_hash"})
TRAIT_FIELDS: tuple[str, ...] = tuple(c.name for c in traits.c if c.name not in _BOOKKEEPING)


@dataclass(frozen=True, slots=True)
class SearchTerm:
    """A classified search: ``kind`` is id, email, phone or name; ``values`` what to match."""

    kind: str
    values: tuple[str, ...]


def classify(q: str, regions: tuple[str, ...]) -> SearchTerm:
    """Tell what ``q`` is and normalise it the way the map stage normalised the data.

    Example:
        >>> classify("07911 123-456", ("GB",))
        SearchTerm(kind='phone', values=('+447911123456',))
    """
    text = q.strip()
    if _MASTER_ID.fullmatch(text):
        return SearchTerm("id", (text,))
    if "@" in text:
        normal = normalize_email(text).email or text
        return SearchTerm("email", tuple(dict.fromkeys((normal, text, text.lower()))))
    digits = re.sub(r"\D", "", text)
    if _PHONE_SHAPE.fullmatch(text) and len(digits) >= 6:
        found = (normalize_phone(text, region, cached=False).e164 for region in regions)
        return SearchTerm("phone", tuple(dict.fromkeys(p for p in found if p)))
    return SearchTerm("name", (" ".join(text.lower().split()),))


def follow_merges(conn: Connection, master_id: str) -> tuple[str | None, bool]:
    """The active master ``master_id`` now is, and whether it was merged into another.

    Returns ``(None, False)`` for an unknown or erased id (or a broken chain).
    """
    current, moved = master_id, False
    for _ in range(_MAX_HOPS):
        row = conn.execute(
            select(masters.c.status, masters.c.merged_into).where(masters.c.master_id == current)
        ).first()
        if row is None:
            return None, False
        if row.status == "active":
            return current, moved
        if row.status != "merged" or not row.merged_into:
            return None, False
        current, moved = row.merged_into, True
    return None, False


def _visible(principal: Principal) -> Any:
    return and_(masters.c.status == "active", customer_rows(principal, profiles.c.branch))


def load_customer(
    conn: Connection, principal: Principal, master_id: str
) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """The profile and traits of an active master the principal may read, else None.

    One statement (profile, master status and traits joined): a profile read is the API's
    commonest request.
    """
    row = conn.execute(
        customer_select(profiles.c.master_id == master_id, _visible(principal))
    ).first()
    return None if row is None else split_customer(row._mapping)


def split_customer(
    values: Mapping[Any, Any],
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A :func:`customer_select` row as (profile, traits or None)."""
    profile = {"master_id": values["master_id"], **{f: values[f] for f in PROFILE_FIELDS}}
    if values["_traits_of"] is None:
        return profile, None
    return profile, {f: values[f"_t_{f}"] for f in TRAIT_FIELDS}


def customer_select(*conditions: Any) -> Select[Any]:
    """Profile, master status and traits joined; traits columns labelled ``_t_<name>``."""
    return (
        select(
            profiles.c.master_id,
            *(profiles.c[f] for f in PROFILE_FIELDS),
            traits.c.master_id.label("_traits_of"),
            *(traits.c[f].label(f"_t_{f}") for f in TRAIT_FIELDS),
        )
        .join(masters, masters.c.master_id == profiles.c.master_id)
        .outerjoin(traits, traits.c.master_id == profiles.c.master_id)
        .where(*conditions)
    )


def profile_select() -> Select[Any]:
    """A search's columns (master id and the shown profile fields), profiles joined to masters."""
    columns = (profiles.c.master_id, *(profiles.c[f] for f in PROFILE_FIELDS))
    return select(*columns).join(masters, masters.c.master_id == profiles.c.master_id)


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def search(
    conn: Connection,
    principal: Principal,
    term: SearchTerm,
    after: list[Any] | None,
    limit: int,
) -> tuple[list[dict[str, Any]], list[Any] | None, str]:
    """One page of customers matching ``term``: (rows, next key or None, how they matched)."""
    if not term.values:
        return [], None, term.kind
    base = profile_select().where(_visible(principal))
    if term.kind == "name":
        return _search_name(conn, base, principal, term.values[0], after, limit)
    column = {"id": profiles.c.master_id, "email": profiles.c.email, "phone": profiles.c.phone}
    matches = column[term.kind].in_(term.values)
    rows = _keyed_page(conn, base.where(matches), after, limit)
    if not rows and after is None and term.kind == "email":
        # The local part's case is kept as the source wrote it: Ann.Smith@ vs ann.smith@.
        # Exact forms above use the index; this case-blind retry scans (see README).
        lowered = func.lower(profiles.c.email) == term.values[0].lower()
        rows = _keyed_page(conn, base.where(lowered), None, limit)
    found = [dict(r._mapping) for r in rows[:limit]]
    next_key = [found[-1]["master_id"]] if len(rows) > limit else None
    return found, next_key, term.kind


def _keyed_page(conn: Connection, query: Any, after: list[Any] | None, limit: int) -> list[Any]:
    if after is not None:
        query = query.where(profiles.c.master_id > str(after[0]))
    return list(conn.execute(query.order_by(profiles.c.master_id).limit(limit + 1)).all())


def _search_name(
    conn: Connection,
    base: Any,
    principal: Principal,
    name: str,
    after: list[Any] | None,
    limit: int,
) -> tuple[list[dict[str, Any]], list[Any] | None, str]:
    sort_name = func.coalesce(func.lower(profiles.c.full_name), literal("", String))
    pattern = _like_prefix(name)
    query = base.add_columns(sort_name.label("_sort")).where(
        or_(
            func.lower(profiles.c.full_name).like(pattern, escape="\\"),
            func.lower(profiles.c.last_name).like(pattern, escape="\\"),
        )
    )
    if after is not None:
        query = query.where(tuple_(sort_name, profiles.c.master_id) > tuple_(*after))
    rows = conn.execute(query.order_by(sort_name, profiles.c.master_id).limit(limit + 1)).all()
    if rows or after is not None:
        found = [dict(r._mapping) for r in rows[:limit]]
        next_key = [found[-1]["_sort"], found[-1]["master_id"]] if len(rows) > limit else None
        for row in found:
            row.pop("_sort")
        return found, next_key, "name_prefix"
    return _search_fuzzy(conn, base, name, limit), None, "name_fuzzy"


def _search_fuzzy(conn: Connection, base: Any, name: str, limit: int) -> list[dict[str, Any]]:
    heads = {token[:2] for token in name.split() if len(token) >= 2}
    if not heads:
        return []
    near = or_(
        *(
            or_(
                func.lower(profiles.c.first_name).like(_like_prefix(head), escape="\\"),
                func.lower(profiles.c.last_name).like(_like_prefix(head), escape="\\"),
            )
            for head in sorted(heads)
        )
    )
    rows = conn.execute(base.where(near).limit(_FUZZY_CANDIDATES)).all()
    scored = []
    for row in rows:
        candidate = row._mapping
        full = str(candidate["full_name"] or "").lower()
        score = fuzz.WRatio(name, full) if full else 0.0
        if score >= _FUZZY_CUTOFF:
            scored.append((-score, candidate["master_id"], dict(candidate)))
    scored.sort(key=lambda item: (item[0], item[1]))
    return [row for _, _, row in scored[:limit]]
