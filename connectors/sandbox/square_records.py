"""Square records: locations, customers and orders, as Square's API writes them.

Staff type customers at the till: nicknames, dropped accents, the odd typo or swapped name, a
second profile made later with only a phone. Orders hold menu items with money as integer pence
and quantities as decimal strings; a customer id is often absent or only in the tenders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.sandbox import ids, vocab
from connectors.sandbox.people import Person, rng_for
from connectors.sandbox.times import rfc3339_ms
from connectors.sandbox.variants import format_phone, pick_phone_style, strip_accents, typo
from connectors.sandbox.world import ORDER_STATES

if TYPE_CHECKING:
    from connectors.sandbox.world import World

_SALT_CUSTOMER = 0x5100
_SALT_ORDER = 0x5101
_TILL_PHONE_STYLES = (0.15, 0.15, 0.0, 0.4, 0.1, 0.05, 0.15)


def location_id(world: World, index: int) -> str:
    """Square location id of a branch (13 characters)."""
    return ids.encode(world.seed, "square.location", index, 13)


def location_index(world: World, text: str) -> int | None:
    """Branch index of a location id, or ``None``."""
    index = ids.decode(world.seed, "square.location", text, 13)
    return index if index is not None and index < len(vocab.BRANCHES) else None


def customer_id(world: World, row: int) -> str:
    """Square customer id of a row (26 characters)."""
    return ids.encode(world.seed, "square.customer", row, 26)


def customer_row(world: World, text: str) -> int | None:
    """Row of a customer id, or ``None`` for an unknown id."""
    row = ids.decode(world.seed, "square.customer", text, 26)
    return row if row is not None and row < len(world.tables["square.customers"]) else None


def order_id(world: World, row: int) -> str:
    """Square order id of a row (27 characters)."""
    return ids.encode(world.seed, "square.order", row, 27)


def money(amount: int) -> dict[str, Any]:
    """Square money: integer minor units plus currency."""
    return {"amount": int(amount), "currency": vocab.CURRENCY}


def locations(world: World) -> list[dict[str, Any]]:
    """The branches as Square locations."""
    out = []
    for i, branch in enumerate(vocab.BRANCHES):
        city = vocab.CITIES[branch.city_index]
        out.append(
            {
                "id": location_id(world, i),
                "name": branch.name,
                "business_name": vocab.BRAND,
                "address": {
                    "address_line_1": branch.address,
                    "locality": city.name,
                    "administrative_district_level_1": city.county,
                    "postal_code": branch.postcode,
                    "country": "GB",
                },
                "timezone": "Europe/London",
                "capabilities": ["CREDIT_CARD_PROCESSING"],
                "status": "ACTIVE",
                "created_at": rfc3339_ms(world.anchor_ms - (4 - i % 3) * 365 * 86_400_000),
                "merchant_id": ids.encode(world.seed, "square.merchant", 0, 13),
                "country": "GB",
                "language_code": "en-GB",
                "currency": vocab.CURRENCY,
                "type": "PHYSICAL",
            }
        )
    return out


def _names(person: Person, variant: int, rng: Any) -> tuple[str, str]:
    given = person.first
    if person.nicknames and rng.random() < (0.35 if variant == 0 else 0.6):
        given = rng.choice(person.nicknames)
    family = person.last
    if rng.random() < 0.5:
        given, family = strip_accents(given), strip_accents(family)
    if rng.random() < 0.03:
        family = typo(family, rng)
    elif rng.random() < 0.02:
        given = typo(given, rng)
    if rng.random() < 0.02:
        given, family = family, given
    return given, family


def render_customer(world: World, row: int) -> dict[str, Any]:
    """Body of a seeded Square customer (volatile fields are stamped by ``stamp_customer``)."""
    table = world.tables["square.customers"]
    person = world.person(table.get("person", row))
    variant = table.get("variant", row)
    created = table.get("created", row)
    rng = rng_for(world.seed, _SALT_CUSTOMER, row)
    given, family = _names(person, variant, rng)
    body: dict[str, Any] = {
        "id": customer_id(world, row),
        "created_at": rfc3339_ms(created),
        "given_name": given,
        "family_name": family,
        "creation_source": "INSTANT_PROFILE"
        if variant
        else rng.choice(["DIRECTORY", "LOYALTY", "THIRD_PARTY"]),
        "preferences": {"email_unsubscribed": rng.random() < 0.1},
    }
    r = rng.random()
    if variant == 0 and r < 0.82:
        body["email_address"] = person.email
    elif variant == 0 and r < 0.9 and person.work_email:
        body["email_address"] = person.work_email
        body["company_name"] = person.company
    phone = person.mobile or person.household.landline
    if phone is not None and (variant == 1 or rng.random() < 0.85):
        if person.household.landline is not None and rng.random() < 0.2:
            phone = person.household.landline
        body["phone_number"] = format_phone(
            phone.area, phone.number, pick_phone_style(rng, _TILL_PHONE_STYLES)
        )
    if variant == 0 and rng.random() < 0.45:
        address = person.address_at(created)
        body["address"] = {
            "address_line_1": address.line1,
            "locality": address.city,
            "administrative_district_level_1": address.county,
            "postal_code": address.postcode,
            "country": "GB",
        }
    if variant == 0 and rng.random() < 0.35:
        year = "0000" if rng.random() < 0.5 else f"{person.birth.year:04d}"
        body["birthday"] = f"{year}-{person.birth.month:02d}-{person.birth.day:02d}"
    notes = []
    if person.allergies and rng.random() < 0.6:
        notes.append("Allergy: " + ", ".join(a.lower() for a in person.allergies))
    if rng.random() < 0.1:
        notes.append(f"Regular, usually orders the {vocab.MENU[person.favourite_dish].name}")
    if notes:
        body["note"] = ". ".join(notes)
    if not any(k in body for k in ("given_name", "family_name", "email_address", "phone_number")):
        body["phone_number"] = "+447700900000"  # Square never lists profiles without contact data
    return body


def stamp_customer(world: World, row: int, body: dict[str, Any]) -> None:
    """Write ``updated_at`` and ``version`` from the columns."""
    table = world.tables["square.customers"]
    body["updated_at"] = rfc3339_ms(table.get("updated", row))
    body["version"] = table.get("version", row)


def _line_item(rng: Any, item_index: int, quantity: int) -> dict[str, Any]:
    item = vocab.MENU[item_index]
    gross = item.price * quantity
    tax = round(gross / 6)  # UK VAT 20 % included in the price
    return {
        "uid": "".join(rng.choice("ABCDEFGHJKMNPQRSTVWXYZ0123456789") for _ in range(22)),
        "name": item.name,
        "quantity": str(quantity),
        "catalog_object_id": f"MENU{item_index:04d}",
        "variation_name": "Regular",
        "item_type": "ITEM",
        "base_price_money": money(item.price),
        "gross_sales_money": money(gross),
        "total_tax_money": money(tax),
        "total_discount_money": money(0),
        "total_money": money(gross),
    }


def render_order(world: World, row: int) -> dict[str, Any]:
    """Body of a seeded Square order."""
    table = world.tables["square.orders"]
    rng = rng_for(world.seed, _SALT_ORDER, row)
    person_index = table.get("person", row)
    cust_row = table.get("customer", row)
    location = location_id(world, table.get("location", row))
    created = table.get("created", row)
    favourite = world.person(person_index).favourite_dish if person_index >= 0 else None
    count = 1 + (rng.random() < 0.7) + (rng.random() < 0.4) + (rng.random() < 0.2)
    items = []
    for k in range(count):
        if k == 0 and favourite is not None and rng.random() < 0.45:
            index = favourite
        else:
            index = rng.randrange(len(vocab.MENU))
        items.append(_line_item(rng, index, rng.choice([1, 1, 1, 2, 2, 3])))
    subtotal = sum(i["total_money"]["amount"] for i in items)
    tax = sum(i["total_tax_money"]["amount"] for i in items)
    tip = round(subtotal * 0.1) if rng.random() < 0.2 else 0
    body: dict[str, Any] = {
        "id": order_id(world, row),
        "location_id": location,
        "source": {"name": "Copper Kettle POS"},
        "line_items": items,
        "created_at": rfc3339_ms(created),
        "total_money": money(subtotal + tip),
        "total_tax_money": money(tax),
        "total_discount_money": money(0),
        "total_tip_money": money(tip),
        "total_service_charge_money": money(0),
        "net_amounts": {
            "total_money": money(subtotal + tip),
            "tax_money": money(tax),
            "discount_money": money(0),
            "tip_money": money(tip),
            "service_charge_money": money(0),
        },
    }
    cust_id = customer_id(world, cust_row) if cust_row >= 0 else None
    if cust_id and not table.get("tender_only", row):
        body["customer_id"] = cust_id
    state = ORDER_STATES[table.get("state", row)]
    if state == "COMPLETED":
        tender: dict[str, Any] = {
            "id": ids.encode(world.seed, "square.tender", row, 26),
            "location_id": location,
            "transaction_id": body["id"],
            "created_at": rfc3339_ms(created),
            "amount_money": money(subtotal + tip),
            "tip_money": money(tip),
            "type": "CARD" if rng.random() < 0.85 else "CASH",
        }
        if cust_id:
            tender["customer_id"] = cust_id
        if tender["type"] == "CARD":
            tender["card_details"] = {
                "status": "CAPTURED",
                "card": {
                    "card_brand": rng.choice(["VISA", "MASTERCARD", "AMERICAN_EXPRESS"]),
                    "last_4": f"{rng.randrange(10_000):04d}",
                },
                "entry_method": "CONTACTLESS",
            }
        body["tenders"] = [tender]
    return body


def stamp_order(world: World, row: int, body: dict[str, Any]) -> None:
    """Write ``updated_at``, ``state``, ``closed_at``, refunds and ``version`` from the columns."""
    table = world.tables["square.orders"]
    updated = table.get("updated", row)
    state = ORDER_STATES[table.get("state", row)]
    body["updated_at"] = rfc3339_ms(updated)
    body["state"] = state
    body["version"] = table.get("version", row)
    if state == "OPEN":
        body.pop("closed_at", None)
    else:
        body.setdefault(
            "closed_at", rfc3339_ms(min(updated, table.get("created", row) + 3 * 3_600_000))
        )
    if (
        state == "COMPLETED"
        and "refunds" not in body
        and updated - table.get("created", row) > 86_400_000
    ):
        item = body["line_items"][0]
        body["refunds"] = [
            {
                "id": ids.encode(world.seed, "square.refund", row, 26),
                "location_id": body["location_id"],
                "transaction_id": body["id"],
                "tender_id": body.get("tenders", [{}])[0].get("id", ""),
                "created_at": rfc3339_ms(updated),
                "reason": "Dish sent back",
                "amount_money": dict(item["base_price_money"]),
                "status": "COMPLETED",
            }
        ]
