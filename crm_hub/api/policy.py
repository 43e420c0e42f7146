"""Who may see what: the read API's role and branch rules, in one place.

Every route asks this module; none decides on its own. Two kinds of rule:

* **Fields by role.** Each profile field and trait belongs to a *group*; :data:`ACCESS` says
  what each role gets of each group: ``full``, ``masked`` (e-mail and phone shown as
  ``a***@example.com`` / ``+44*******456``) or nothing (the field is left out).

  | group        | staff  | manager | admin, service |
  |--------------|--------|---------|----------------|
  | identity     | full   | full    | full           |
  | contact      | masked | full    | full           |
  | birthday     | full   | full    | full           |
  | visits       | full   | full    | full           |
  | preferences  | full   | full    | full           |
  | consent      | full   | full    | full           |
  | address      | -      | full    | full           |
  | money        | -      | full    | full           |
  | marketing    | -      | full    | full           |
  | provenance   | -      | -       | full           |

  A trait column no group names (a new trait) is ``admin``/``service`` only until it is
  classified here.

* **Rows by branch.** A token bound to a branch reads only customers whose home branch
  (``profiles.branch``) is that branch; any other id answers 404, exactly as an unknown id, so
  ids of other branches cannot be probed. Rows that belong to a branch (orders, visits, the
  ``visits_by_branch`` trait) are shown only for the token's own branch (rows without a branch
  are chain-wide and shown). A token without a branch reads every branch.

Timeline kinds follow the groups: invoices and payments are ``money``; orders and visits show
their amounts only to roles that see ``money``.

* **Reports** (the analytics stage's ``report_*`` tables: counts, no person in them) belong to
  the ``marketing`` group: managers, admins and services see them, staff do not. Rows kept per
  branch (the funnel) are filtered like customers: a branch token sees its branch's rows only.
  Campaign revenue and cost are summed over every branch, so they are shown only to roles that
  see ``money`` *and* have no branch (:func:`sees_chain_money`); a branch manager gets the
  campaign counts without them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import ColumnElement, or_, true

__all__ = [
    "ACCESS",
    "PROFILE_GROUPS",
    "ROLES",
    "TIMELINE_GROUPS",
    "TRAIT_GROUPS",
    "Principal",
    "branch_rows",
    "can_use",
    "customer_rows",
    "field_access",
    "mask_email",
    "mask_phone",
    "report_rows",
    "sees",
    "sees_chain_money",
    "sees_reports",
    "shape_customer",
    "shape_row",
]

ROLES = ("staff", "manager", "admin", "service")
"""Token roles, least to most: staff (front of house), manager (a branch's money), admin and
service (a downstream program) see everything."""

Access = Literal["full", "masked"]

PROFILE_GROUPS: dict[str, tuple[str, ...]] = {
    "identity": ("full_name", "first_name", "last_name", "language", "branch", "updated_at"),
    "contact": ("email", "phone", "emails", "phones"),
    "birthday": ("birth_year", "birth_month", "birth_day"),
    "address": ("address_line1", "address_line2", "city", "region", "postcode", "country"),
    "consent": ("consents",),
    "provenance": ("provenance",),
}

TRAIT_GROUPS: dict[str, tuple[str, ...]] = {
    "visits": (
        "orders_count", "visits_count", "first_order_at", "last_order_at",
        "days_since_last_order", "visits_by_branch", "preferred_branch", "usual_weekday",
        "usual_hour", "computed_at",
    ),
    "preferences": ("favourite_items", "allergies", "favourite_dish", "preferences"),
    "birthday": ("next_birthday", "days_to_birthday", "age_band"),
    "consent": ("unsubscribed", "consent_email", "consent_sms"),
    "money": (
        "currency", "total_spend", "average_order_value", "spend_by_category", "ltv",
        "predicted_clv", "open_balance", "overdue_amount", "overdue_days", "spend_by_currency",
        "balance_by_currency",
    ),
    "marketing": (
        "rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_segment", "churn_risk",
        "email_opens", "email_clicks", "last_email_activity_at",
    ),
}  # fmt: skip

_EVERYTHING: dict[str, Access] = {
    group: "full" for group in {*PROFILE_GROUPS, *TRAIT_GROUPS, "unclassified"}
}
ACCESS: dict[str, dict[str, Access]] = {
    "staff": {
        "identity": "full",
        "contact": "masked",
        "birthday": "full",
        "visits": "full",
        "preferences": "full",
        "consent": "full",
    },
    "manager": {
        **{g: "full" for g in ("identity", "contact", "birthday", "visits", "preferences")},
        **{g: "full" for g in ("consent", "address", "money", "marketing")},
    },
    "admin": _EVERYTHING,
    "service": _EVERYTHING,
}
"""Role → group → access; a group missing from a role's map is hidden from it."""

TIMELINE_GROUPS: dict[str, str] = {
    "visit": "visits",
    "order": "visits",
    "email": "marketing",
    "form": "preferences",
    "invoice": "money",
    "payment": "money",
}
"""Timeline entry kind → the group a role must see to get entries of that kind."""

# E-mail activity is what staff may see of a customer's marketing (opened the newsletter);
# its counts stay with the marketing group.
_STAFF_TIMELINE = frozenset({"visit", "order", "email", "form"})

_FIELD_GROUP: dict[str, str] = {
    field: group for groups in (PROFILE_GROUPS, TRAIT_GROUPS) for group, fields in groups.items()
    for field in fields
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: the token's id, name, role and branch (None: every branch)."""

    token_id: str
    name: str
    role: str
    branch: str | None


def field_access(principal: Principal, field: str) -> Access | None:
    """What ``principal`` gets of ``field``: ``full``, ``masked`` or None (hidden)."""
    return _role_access(principal.role, field)


def _role_access(role: str, field: str) -> Access | None:
    return ACCESS.get(role, {}).get(_FIELD_GROUP.get(field, "unclassified"))


def sees(principal: Principal, group: str) -> bool:
    """Whether the role sees a group at all (masked counts)."""
    return group in ACCESS.get(principal.role, {})


def can_use(principal: Principal, kind: str) -> bool:
    """Whether timeline entries of ``kind`` are shown to ``principal``."""
    if principal.role == "staff":
        return kind in _STAFF_TIMELINE
    return sees(principal, TIMELINE_GROUPS.get(kind, "unclassified"))


def customer_rows(principal: Principal, home_branch: Any) -> ColumnElement[bool]:
    """SQL filter: the customers (by home branch column) this principal may read."""
    if principal.branch is None:
        return true()
    return home_branch == principal.branch  # type: ignore[no-any-return]


def branch_rows(principal: Principal, row_branch: Any) -> ColumnElement[bool]:
    """SQL filter: rows that belong to a branch, kept for the principal's branch or none."""
    if principal.branch is None:
        return true()
    return or_(row_branch == principal.branch, row_branch.is_(None))


def sees_reports(principal: Principal) -> bool:
    """Whether the analytics reports (manager page) are shown to ``principal`` at all."""
    return sees(principal, "marketing")


def report_rows(principal: Principal, row_branch: Any) -> ColumnElement[bool]:
    """SQL filter: per-branch report rows; a branch token gets its own branch's rows only."""
    return customer_rows(principal, row_branch)


def sees_chain_money(principal: Principal) -> bool:
    """Whether money summed over every branch (campaign revenue, cost) is shown."""
    return sees(principal, "money") and principal.branch is None


def mask_email(value: str) -> str:
    """``ann.smith@example.com`` → ``a***@example.com``.

    Example:
        >>> mask_email("Ann@Example.com")
        'A***@Example.com'
    """
    local, at, domain = value.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_phone(value: str) -> str:
    """``+447911123456`` → ``+44*******456``: country code and last three digits.

    Example:
        >>> mask_phone("+447911123456")
        '+44*******456'
    """
    if len(value) <= 6:
        return "***"
    return value[:3] + "*" * (len(value) - 6) + value[-3:]


def _masked(field: str, value: Any) -> Any:
    if value is None:
        return None
    if field == "email":
        return mask_email(str(value))
    if field == "phone":
        return mask_phone(str(value))
    if field == "emails" and isinstance(value, list):
        return [
            {"email": mask_email(str(e.get("email") or ""))} if isinstance(e, dict) else "***"
            for e in value
        ]
    if field == "phones" and isinstance(value, list):
        return [
            {"e164": mask_phone(str(p.get("e164") or ""))} if isinstance(p, dict) else "***"
            for p in value
        ]
    return "***"


_Shown = tuple[tuple[tuple[str, bool], ...], tuple[str, ...]]


@lru_cache(maxsize=256)
def _shown(role: str, fields: tuple[str, ...]) -> _Shown:
    """Of ``fields`` (a row's keys, in order), what ``role`` is shown, each with whether in full,
    and what it is not shown in full. Asked per row on every read, so kept per key layout."""
    access = {field: _role_access(role, field) for field in fields}
    shown = tuple((field, grant == "full") for field, grant in access.items() if grant is not None)
    return shown, tuple(field for field, grant in access.items() if grant != "full")


def shape_row(principal: Principal, row: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the fields of ``row`` the principal may see, masking where the role says so."""
    shown, _ = _shown(principal.role, tuple(row))
    shaped = {field: row[field] if full else _masked(field, row[field]) for field, full in shown}
    if principal.branch is not None and isinstance(shaped.get("visits_by_branch"), dict):
        own = shaped["visits_by_branch"].get(principal.branch)
        shaped["visits_by_branch"] = {} if own is None else {principal.branch: own}
    return shaped


def shape_customer(
    principal: Principal, profile: Mapping[str, Any], traits: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The customer as ``principal`` may see it: ``{master_id, profile, traits, withheld}``.

    ``withheld`` names the fields left out or masked for this role (names only, never values),
    so a client can tell "hidden" from "unknown".
    """
    body_profile = shape_row(principal, profile)
    body_traits = shape_row(principal, traits) if traits is not None else None
    role = principal.role
    withheld = sorted((*_shown(role, tuple(profile))[1], *_shown(role, tuple(traits or ()))[1]))
    return {
        "master_id": profile["master_id"],
        "profile": body_profile,
        "traits": body_traits,
        "withheld": withheld,
    }
