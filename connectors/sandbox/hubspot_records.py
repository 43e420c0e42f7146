"""HubSpot records: marketing's contacts, every property value a string.

Marketing collects people from event enquiries and imports: the work e-mail as often as the
personal one (the other kept in ``hs_additional_emails``), first and last name now and then
swapped by a bad import, phones in international format.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.sandbox import vocab
from connectors.sandbox.people import rng_for
from connectors.sandbox.times import rfc3339_ms
from connectors.sandbox.variants import format_phone, pick_phone_style

if TYPE_CHECKING:
    from connectors.sandbox.world import World

_SALT_CONTACT = 0x4B00
_CRM_PHONE_STYLES = (0.3, 0.45, 0.0, 0.15, 0.0, 0.0, 0.1)
_ID_BASE = 1001

DEFAULT_PROPERTIES = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)
# Properties a client may write; anything else fails the item (HubSpot: PROPERTY_DOESNT_EXIST).
WRITABLE_PROPERTIES = frozenset(
    {
        "email",
        "firstname",
        "lastname",
        "phone",
        "mobilephone",
        "address",
        "city",
        "zip",
        "country",
        "date_of_birth",
        "company",
        "jobtitle",
        "lifecyclestage",
        "favourite_dish",
        "home_branch",
        "crm_hub_master_id",
        "total_spend",
        "last_visit_date",
    }
)
READ_ONLY_PROPERTIES = frozenset(
    {"hs_object_id", "createdate", "lastmodifieddate", "hs_additional_emails", "hs_email_optout"}
)
ALL_PROPERTIES = WRITABLE_PROPERTIES | READ_ONLY_PROPERTIES


def contact_id(row: int) -> str:
    """HubSpot record id (numeric string)."""
    return str(_ID_BASE + row)


def contact_row(text: str) -> int | None:
    """Row of a record id, or ``None`` when it is not one of ours."""
    if not text.isdigit():
        return None
    row = int(text) - _ID_BASE
    return row if row >= 0 else None


def render_contact(world: World, row: int) -> dict[str, Any]:
    """Body of a seeded contact (volatile fields are stamped by ``stamp_contact``)."""
    table = world.tables["hubspot.contacts"]
    person = world.person(table.get("person", row))
    created = table.get("created", row)
    rng = rng_for(world.seed, _SALT_CONTACT, row)
    first = (
        rng.choice(person.nicknames) if person.nicknames and rng.random() < 0.5 else person.first
    )
    last = person.last
    if rng.random() < 0.03:
        first, last = last, first
    props: dict[str, str | None] = {name: None for name in sorted(ALL_PROPERTIES)}
    use_work = person.work_email is not None and rng.random() < 0.45
    props["email"] = person.work_email if use_work else person.email
    if use_work or (person.work_email and rng.random() < 0.15):
        other = person.email if use_work else person.work_email
        props["hs_additional_emails"] = other
    props["firstname"] = first
    props["lastname"] = last
    if person.mobile and rng.random() < 0.7:
        style = pick_phone_style(rng, _CRM_PHONE_STYLES)
        props["phone"] = format_phone(person.mobile.area, person.mobile.number, style)
        if rng.random() < 0.3:
            props["mobilephone"] = person.mobile.e164
    elif person.household.landline is not None:
        landline = person.household.landline
        style = pick_phone_style(rng, _CRM_PHONE_STYLES)
        props["phone"] = format_phone(landline.area, landline.number, style)
    if rng.random() < 0.35:
        address = person.address_at(created)
        props.update(
            address=address.line1, city=address.city, zip=address.postcode, country="United Kingdom"
        )
    if rng.random() < 0.2:
        props["date_of_birth"] = person.birth.isoformat()
    if use_work:
        props["company"] = person.company
        props["jobtitle"] = rng.choice(
            ["Office Manager", "PA", "Head of People", "Director", "Events Lead"]
        )
    props["lifecyclestage"] = rng.choice(
        ["subscriber", "lead", "customer", "customer", "evangelist"]
    )
    props["hs_email_optout"] = "true" if rng.random() < 0.06 else "false"
    if rng.random() < 0.4:
        props["favourite_dish"] = vocab.MENU[person.favourite_dish].name
    props["home_branch"] = vocab.BRANCHES[person.household.branch].key
    return {"id": contact_id(row), "properties": props, "archived": False}


def stamp_contact(world: World, row: int, body: dict[str, Any]) -> None:
    """Write ids, create/modify times and ``archived`` from the columns (all values strings)."""
    table = world.tables["hubspot.contacts"]
    created = rfc3339_ms(table.get("created", row))
    updated = rfc3339_ms(table.get("updated", row))
    props = body["properties"]
    props["hs_object_id"] = contact_id(row)
    props["createdate"] = created
    props["lastmodifieddate"] = updated
    body["id"] = contact_id(row)
    body["createdAt"] = created
    body["updatedAt"] = updated
    archived = bool(table.get("deleted", row))
    body["archived"] = archived
    if archived:
        body["archivedAt"] = updated
    else:
        body.pop("archivedAt", None)


def email_index(world: World) -> dict[str, int]:
    """Lower-cased primary e-mail → row of live contacts (built once, kept current by writes)."""
    index: dict[str, int] | None = world.caches.get("hubspot.email_index")
    if index is None:
        table = world.tables["hubspot.contacts"]
        index = {}
        for row in range(len(table)):
            if table.get("deleted", row):
                continue
            email = table.body(row)["properties"].get("email")
            if email:
                index[str(email).lower()] = row
        world.caches["hubspot.email_index"] = index
    return index
