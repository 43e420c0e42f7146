"""The trait registry: one entry per column of the ``traits`` table.

Each entry says what the trait means (for marketing and ops), its type and unit, and how it is
computed (the formula, and the function in this package that computes it). The registry feeds
the README table (``readme_table``, checked by a test), the read API schema (``json_schema``)
and the order of the columns the stage writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "TRAITS",
    "TraitDef",
    "json_schema",
    "readme_table",
    "register_trait",
    "trait_names",
]

# Trait types: the column's SQL type in words, and the JSON Schema the API shows for it.
_JSON_TYPES: dict[str, dict[str, Any]] = {
    "integer": {"type": ["integer", "null"]},
    "decimal": {"type": ["string", "null"], "format": "decimal"},
    "float": {"type": ["number", "null"]},
    "boolean": {"type": ["boolean", "null"]},
    "text": {"type": ["string", "null"]},
    "date": {"type": ["string", "null"], "format": "date"},
    "timestamp": {"type": ["string", "null"], "format": "date-time"},
    "json": {"type": ["object", "array", "null"]},
}


@dataclass(frozen=True, slots=True)
class TraitDef:
    """One trait: a column of ``traits``.

    Attributes:
        name: the column name.
        type: integer, decimal, float, boolean, text, date, timestamp or json.
        description: what it means, for a marketer (one or two sentences).
        computed: how it is computed, precisely enough to check by hand.
        computed_by: the function computing it (``module:function`` in this package).
        unit: days, hours, the master's currency, ... (empty when none).
        group: where it belongs (orders, money, scores, person, e-mail, forms).
    """

    name: str
    type: str
    description: str
    computed: str
    computed_by: str
    unit: str = ""
    group: str = ""


TRAITS: dict[str, TraitDef] = {}


def register_trait(trait: TraitDef) -> TraitDef:
    """Add ``trait`` to the registry (its name must be new and its type known)."""
    if trait.name in TRAITS:
        raise ValueError(f"trait {trait.name} is registered twice")
    if trait.type not in _JSON_TYPES:
        raise ValueError(f"trait {trait.name}: unknown type {trait.type!r}")
    TRAITS[trait.name] = trait
    return trait


def trait_names() -> list[str]:
    """Every trait column, in registry order."""
    return list(TRAITS)


def readme_table() -> str:
    """The README's trait table (markdown), generated from the registry."""
    lines = ["| trait | type | unit | meaning |", "|---|---|---|---|"]
    for t in TRAITS.values():
        lines.append(f"| `{t.name}` | {t.type} | {t.unit} | {t.description} {t.computed} |")
    return "\n".join(lines)


def json_schema() -> dict[str, Any]:
    """A JSON Schema object describing one traits row, for the read API."""
    properties: dict[str, Any] = {"master_id": {"type": "string"}}
    for t in TRAITS.values():
        properties[t.name] = {**_JSON_TYPES[t.type], "description": t.description}
    return {"title": "Traits", "type": "object", "properties": properties}


_A = "crm_hub.profile.traits.activity:order_traits"
_L = "crm_hub.profile.traits.activity:line_traits"
_S = "crm_hub.profile.traits.scores:score_traits"
_C = "crm_hub.profile.traits.clv:predict_clv"
_P = "crm_hub.profile.traits.person:person_traits"
_M = "crm_hub.profile.traits.person:money_owed"
_E = "crm_hub.profile.traits.person:email_traits"

_KEPT = "Orders that were cancelled (status cancelled, canceled, void, voided) never count."
_NET = (
    "Net: orders with status refunded count 0 and refund records (a negative total) "
    "subtract; only orders in the master's main currency."
)

for _t in (
    TraitDef("orders_count", "integer", "Number of orders placed.",
             f"{_KEPT} Refund records (negative total) are not orders.", _A, "orders", "orders"),
    TraitDef("visits_count", "integer", "Number of visits to a branch.",
             "An order placed in a branch (branch not empty) is a visit.", _A, "visits",
             "orders"),
    TraitDef("first_order_at", "timestamp", "When the first order was placed (UTC).",
             "Earliest placed_at of the counted orders.", _A, "", "orders"),
    TraitDef("last_order_at", "timestamp", "When the last order was placed (UTC).",
             "Latest placed_at of the counted orders.", _A, "", "orders"),
    TraitDef("days_since_last_order", "integer", "Days since the last order.",
             "today minus the local date of last_order_at.", _A, "days", "orders"),
    TraitDef("currency", "text", "The master's main currency: money traits are in it.",
             "The currency with the most net order spend (ties: alphabetical); without orders "
             "the currency of the most invoiced amount.", _A, "ISO 4217", "money"),
    TraitDef("total_spend", "decimal", "Net spend on orders.",
             f"{_NET}", _A, "currency", "money"),
    TraitDef("average_order_value", "decimal", "Average net value of an order.",
             "total_spend / number of counted, not refunded orders in the main currency.", _A,
             "currency", "money"),
    TraitDef("spend_by_currency", "json", "Net order spend per currency, main one included.",
             "{currency: amount}; refunds as in total_spend. Other currencies are never "
             "converted or added to the money traits.", _A, "", "money"),
    TraitDef("spend_by_category", "json", "Net spend per product category.",
             "{category: amount} from the order lines' attributes.category (missing: "
             "uncategorised), lines of net-counted orders in the main currency; refund "
             "records' lines subtract.", _L, "currency", "money"),
    TraitDef("visits_by_branch", "json", "Visits per branch.", "{branch: visits}.", _A, "visits",
             "orders"),
    TraitDef("preferred_branch", "text", "The branch visited most.",
             "Most visits; ties: the alphabetically first branch.", _A, "", "orders"),
    TraitDef("usual_weekday", "integer", "The weekday the person usually orders.",
             "Most frequent local weekday of the counted orders, 0 Monday .. 6 Sunday; ties: the "
             "earliest day.", _A, "0-6", "orders"),
    TraitDef("usual_hour", "integer", "The hour the person usually orders.",
             "Most frequent local hour (placed_at in the source's own offset); ties: the "
             "earliest.", _A, "0-23", "orders"),
    TraitDef("favourite_items", "json", "The three items ordered most often.",
             "[{item, count}]: lines per product of the counted, not refunded orders; ties: "
             "alphabetical.", _L, "", "orders"),
    TraitDef("ltv", "decimal", "Historic lifetime value: everything the person paid.",
             "total_spend plus completed accounting payments in the main currency.", _M,
             "currency", "money"),
    TraitDef("predicted_clv", "decimal", "Expected spend in the next 12 months.",
             "BG/NBD (expected orders in 365 days) x Gamma-Gamma (expected order value), "
             "fitted by lifetimes on a sample of up to 50,000 customers once a day; when the "
             "fit is impossible or fails: orders per day of tenure x 365 x AOV x "
             "(1 - churn_risk).", _C, "currency", "scores"),
    TraitDef("rfm_recency", "integer", "Recency score, 5 = ordered most recently.",
             "Quintile of days_since_last_order among masters with orders (cut points fixed "
             "once a day).", _S, "1-5", "scores"),
    TraitDef("rfm_frequency", "integer", "Frequency score, 5 = orders most often.",
             "Quintile of orders_count among masters with orders.", _S, "1-5", "scores"),
    TraitDef("rfm_monetary", "integer", "Monetary score, 5 = spends most.",
             "Quintile of total_spend among masters with orders.", _S, "1-5", "scores"),
    TraitDef("rfm_segment", "text", "Named RFM segment.",
             "From recency and frequency scores: champions (R5 F4-5), loyal_customers (R3-4 "
             "F4-5), potential_loyalists (R4-5 F2-3), new_customers (R5 F1), promising (R4 F1), "
             "need_attention (R3 F3), about_to_sleep (R3 F1-2), at_risk (R1-2 F3-4), cant_lose "
             "(R1-2 F5), hibernating (R1-2 F1-2).", _S, "", "scores"),
    TraitDef("churn_risk", "float", "How overdue the person is against their own rhythm.",
             "rhythm = (last - first order day) / (days with orders - 1), or the median rhythm of "
             "all repeat customers for one-day customers; risk = clamp((days_since_last_order / "
             "rhythm - 1) / 2, 0, 1): 0 within their usual gap, 1 at three gaps.", _S, "0-1",
             "scores"),
    TraitDef("next_birthday", "date", "The next birthday, today included.",
             "From the golden profile, else the most complete source customer birth date; "
             "29 February is celebrated on 28 February in other years.", _P, "", "person"),
    TraitDef("days_to_birthday", "integer", "Days until the next birthday (0: today).",
             "next_birthday - today.", _P, "days", "person"),
    TraitDef("age_band", "text", "Age band, when the birth year is known.",
             "Age today in: under 18, 18-24, 25-34, 35-44, 45-54, 55-64, 65+.", _P, "", "person"),
    TraitDef("open_balance", "decimal", "Money still owed on invoices.",
             "Sum of balance (else amount minus completed payments) of invoices not void/paid, "
             "in the main currency.", _M, "currency", "money"),
    TraitDef("balance_by_currency", "json", "Money owed per currency, main one included.",
             "{currency: open balance}; balances in other currencies are only here.", _M, "",
             "money"),
    TraitDef("overdue_amount", "decimal", "Money owed on invoices past their due date.",
             "Open balance of invoices with due_date before today, main currency.", _M,
             "currency", "money"),
    TraitDef("overdue_days", "integer", "Days the oldest overdue invoice is late.",
             "today - the earliest due_date of an overdue invoice; null when none.", _M, "days",
             "money"),
    TraitDef("email_opens", "integer", "E-mails opened.",
             "Events of kind opened (events name their customer by customer_source_id).", _E,
             "events",
             "e-mail"),
    TraitDef("email_clicks", "integer", "Links clicked in e-mails.", "Events of kind clicked.",
             _E, "events", "e-mail"),
    TraitDef("last_email_activity_at", "timestamp", "Last e-mail open or click (UTC).",
             "Latest occurred_at of opened/clicked events.", _E, "", "e-mail"),
    TraitDef("unsubscribed", "boolean", "Unsubscribed from e-mails.",
             "The latest subscribed/unsubscribed event is an unsubscribe; null without such "
             "events.", _E, "", "e-mail"),
    TraitDef("consent_email", "boolean", "May be sent marketing e-mail.",
             "The latest dated consents.email of the master's source customers (undated ones "
             "count as oldest; a tie: refusal wins); an unsubscribe after it makes it false.",
             _E, "", "e-mail"),
    TraitDef("consent_sms", "boolean", "May be sent marketing SMS.",
             "The latest dated consents.sms, as for consent_email.", _E, "", "e-mail"),
    TraitDef("allergies", "text", "Allergies given in forms.",
             "attributes.allergies of every source customer, distinct, joined by ', '.", _P, "",
             "forms"),
    TraitDef("favourite_dish", "text", "Favourite dish given in a form.",
             "attributes.favourite_dish of the most recently updated source customer with one.",
             _P, "", "forms"),
    TraitDef("preferences", "json", "Other form answers (notes, seating, diet...).",
             "Every other attributes key of the source customers (latest updated wins), except "
             "internal ones (unusable_*).", _P, "", "forms"),
):  # fmt: skip
    register_trait(_t)
