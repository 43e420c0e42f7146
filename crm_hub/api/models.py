"""Response shapes, for the OpenAPI document (routes render JSON themselves, faster)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "CustomerOut",
    "CustomerPage",
    "MemberPage",
    "OrderPage",
    "ProblemOut",
    "TimelinePage",
    "TraitOut",
]


class ProblemOut(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(
        description="Stable URN of the kind of problem, e.g. urn:crm-hub:problem:not-found."
    )
    title: str
    status: int
    detail: str = Field(description="What went wrong, for a person.")
    instance: str | None = Field(None, description="The path that was asked for.")
    errors: list[dict[str, str]] | None = Field(None, description="Invalid parameters (422).")


class CustomerOut(BaseModel):
    """A customer as the token's role may see it."""

    master_id: str
    profile: dict[str, Any] = Field(description="Golden record fields this role may see.")
    traits: dict[str, Any] | None = Field(description="Computed traits this role may see.")
    withheld: list[str] = Field(description="Fields hidden or masked for this role (names only).")


class _Page(BaseModel):
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null at the end."
    )
    limit: int = Field(description="The page size used (capped).")


class CustomerPage(_Page):
    """Search results."""

    match: str = Field(
        description="How the term was read: id, email, phone, name_prefix, name_fuzzy."
    )
    items: list[CustomerOut]


class OrderOut(BaseModel):
    """One order; money fields only for roles that see money."""

    source: str
    source_id: str
    branch: str | None
    channel: str | None
    status: str | None
    placed_at: datetime | None
    currency: str | None = None
    total: str | None = None
    lines: list[dict[str, Any]]


class OrderPage(_Page):
    """A page of orders, newest first."""

    items: list[OrderOut]


class TimelineEntry(BaseModel):
    """One thing that happened: a visit, order, e-mail activity, form, invoice or payment."""

    at: datetime | None
    kind: str = Field(description="visit, order, email, form, invoice or payment.")
    source: str
    source_id: str
    label: str | None = Field(description="Channel, e-mail event kind, invoice number or method.")
    status: str | None
    branch: str | None
    currency: str | None = None
    amount: str | None = None


class TimelinePage(_Page):
    """A page of the timeline, newest first."""

    items: list[TimelineEntry]


class MemberOut(BaseModel):
    """A segment member."""

    master_id: str
    entered_at: datetime
    full_name: str | None


class MemberPage(_Page):
    """A page of a segment's members, by master id."""

    items: list[MemberOut]


class TraitOut(BaseModel):
    """One trait in the schema."""

    name: str
    type: str = Field(
        description="integer, decimal, float, boolean, text, date, timestamp or json."
    )
    description: str | None
    unit: str = Field(description="days, hours, currency, ... (empty when none).")
    computed: str | None = Field(description="How it is computed.")
    group: str = Field(description="Policy group deciding which roles see it.")
    access: str | None = Field(description="What this token gets: full, masked or null (hidden).")
