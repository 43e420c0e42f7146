"""QuickBooks Online records: customers who book events, their invoices and payments.

A bookkeeper writes people formally (full given name, sometimes the surname in capitals, the
company in the display name) with the billing address on file when the account was opened, so
people who moved since show their old address here. Amounts are JSON numbers in pounds;
``Balance`` above zero means the customer owes money. Times carry a US Pacific offset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from connectors.sandbox import vocab
from connectors.sandbox.people import rng_for
from connectors.sandbox.times import DAY_MS, quickbooks_time
from connectors.sandbox.variants import format_phone, pick_phone_style, recase

if TYPE_CHECKING:
    from connectors.sandbox.world import World

_SALT_CUSTOMER = 0x9B00
_SALT_INVOICE = 0x9B01
_BOOKKEEPER_PHONE_STYLES = (0.05, 0.1, 0.0, 0.45, 0.0, 0.4, 0.0)
_CURRENCY = {"value": "GBP", "name": "British Pound Sterling"}


def customer_id(row: int) -> str:
    """QuickBooks customer Id (numeric string, 1-based)."""
    return str(row + 1)


def invoice_id(row: int) -> str:
    """Invoice Id: transactions share one numeric id space (invoices even, payments odd)."""
    return str(100 + 2 * row)


def payment_id(row: int) -> str:
    """Payment Id (odd numbers of the shared transaction id space)."""
    return str(101 + 2 * row)


def pounds(pence: int) -> float | int:
    """Pence to a JSON number of pounds (``12345`` → ``123.45``; whole pounds stay integers)."""
    whole, rest = divmod(int(pence), 100)
    return whole if rest == 0 else int(pence) / 100


def balances(world: World) -> np.ndarray:
    """Open balance in pence per customer row (sum of its invoices' balances), cached."""
    invoices = world.tables["quickbooks.invoices"]
    customers = world.tables["quickbooks.customers"]
    key = (invoices.version, len(customers))
    cached = world.caches.get("quickbooks.balances")
    if cached is not None and cached[0] == key:
        return cached[1]  # type: ignore[no-any-return]
    live = invoices.col("deleted") == 0
    owed = (invoices.col("total") - invoices.col("paid"))[live]
    out = np.bincount(
        invoices.col("customer")[live], weights=owed, minlength=len(customers)
    ).astype(np.int64)
    world.caches["quickbooks.balances"] = (key, out)
    return out


def render_customer(world: World, row: int) -> dict[str, Any]:
    """Body of a seeded customer (volatile fields are stamped by ``stamp_customer``)."""
    table = world.tables["quickbooks.customers"]
    person = world.person(table.get("person", row))
    created = table.get("created", row)
    rng = rng_for(world.seed, _SALT_CUSTOMER, row)
    given = person.first
    family = recase(person.last, rng, upper=0.06)
    display = f"{given} {family}"
    body: dict[str, Any] = {
        "Id": customer_id(row),
        "GivenName": given,
        "FamilyName": family,
        "FullyQualifiedName": display,
        "PrintOnCheckName": display,
        "Taxable": True,
        "Job": False,
        "BillWithParent": False,
        "CurrencyRef": dict(_CURRENCY),
        "PreferredDeliveryMethod": "Email",
        "domain": "QBO",
        "sparse": False,
    }
    if person.company and rng.random() < 0.8:
        body["CompanyName"] = person.company
        display = f"{given} {family} ({person.company})"
    body["DisplayName"] = display
    body["FullyQualifiedName"] = display
    email = person.work_email if person.work_email and rng.random() < 0.8 else person.email
    body["PrimaryEmailAddr"] = {"Address": email}
    phone = person.household.landline or person.mobile
    if phone is not None:
        style = pick_phone_style(rng, _BOOKKEEPER_PHONE_STYLES)
        body["PrimaryPhone"] = {"FreeFormNumber": format_phone(phone.area, phone.number, style)}
    if person.mobile is not None and rng.random() < 0.5:
        style = pick_phone_style(rng, _BOOKKEEPER_PHONE_STYLES)
        body["Mobile"] = {
            "FreeFormNumber": format_phone(person.mobile.area, person.mobile.number, style)
        }
    address = person.address_at(created)
    body["BillAddr"] = {
        "Id": str(1000 + row),
        "Line1": address.line1,
        "City": address.city,
        "PostalCode": address.postcode,
        "Country": "United Kingdom" if rng.random() < 0.7 else "UK",
    }
    if person.allergies and rng.random() < 0.4:
        body["Notes"] = "Dietary: " + ", ".join(person.allergies).lower() + " allergy"
    return body


def stamp_customer(world: World, row: int, body: dict[str, Any]) -> None:
    """Write ``Balance``, ``Active``, ``SyncToken`` and ``MetaData`` from the columns."""
    table = world.tables["quickbooks.customers"]
    balance = pounds(int(balances(world)[row]))
    body["Balance"] = balance
    body["BalanceWithJobs"] = balance
    body["Active"] = not table.get("deleted", row)
    body["SyncToken"] = str(table.get("version", row) - 1)
    body["MetaData"] = {
        "CreateTime": quickbooks_time(table.get("created", row)),
        "LastUpdatedTime": quickbooks_time(table.get("updated", row)),
    }


def render_invoice(world: World, row: int) -> dict[str, Any]:
    """Body of a seeded invoice."""
    table = world.tables["quickbooks.invoices"]
    rng = rng_for(world.seed, _SALT_INVOICE, row)
    name, _, _ = vocab.INVOICE_ITEMS[table.get("item", row)]
    total = table.get("total", row)
    qty = rng.choice([1, 1, 2, 4, 10]) if total % 200 == 0 else 1
    while total % qty:
        qty -= 1
    created = table.get("created", row)
    customer = table.get("customer", row)
    person = world.person(table.get("person", row))
    return {
        "Id": invoice_id(row),
        "DocNumber": str(1001 + row),
        "TxnDate": quickbooks_time(created)[:10],
        "DueDate": quickbooks_time(created + 30 * DAY_MS)[:10],
        "CustomerRef": {"value": customer_id(customer), "name": f"{person.first} {person.last}"},
        "CurrencyRef": dict(_CURRENCY),
        "Line": [
            {
                "Id": "1",
                "LineNum": 1,
                "Description": f"{name} - {vocab.BRANCHES[person.household.branch].name}",
                "Amount": pounds(total),
                "DetailType": "SalesItemLineDetail",
                "SalesItemLineDetail": {
                    "ItemRef": {"value": str(10 + table.get("item", row)), "name": name},
                    "Qty": qty,
                    "UnitPrice": pounds(total // qty),
                },
            },
            {"Amount": pounds(total), "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}},
        ],
        "TxnTaxDetail": {"TotalTax": 0},
        "TotalAmt": pounds(total),
        "BillEmail": {"Address": person.work_email or person.email},
        "domain": "QBO",
        "sparse": False,
    }


def stamp_invoice(world: World, row: int, body: dict[str, Any]) -> None:
    """Write ``Balance``, ``SyncToken`` and ``MetaData`` from the columns."""
    table = world.tables["quickbooks.invoices"]
    body["Balance"] = pounds(table.get("total", row) - table.get("paid", row))
    body["SyncToken"] = str(table.get("version", row) - 1)
    body["MetaData"] = {
        "CreateTime": quickbooks_time(table.get("created", row)),
        "LastUpdatedTime": quickbooks_time(table.get("updated", row)),
    }


def render_payment(world: World, row: int) -> dict[str, Any]:
    """Body of a seeded payment against one invoice."""
    table = world.tables["quickbooks.payments"]
    amount = pounds(table.get("amount", row))
    customer = table.get("customer", row)
    person = world.person(table.get("person", row))
    return {
        "Id": payment_id(row),
        "TxnDate": quickbooks_time(table.get("created", row))[:10],
        "CustomerRef": {"value": customer_id(customer), "name": f"{person.first} {person.last}"},
        "CurrencyRef": dict(_CURRENCY),
        "TotalAmt": amount,
        "UnappliedAmt": 0,
        "ProcessPayment": False,
        "Line": [
            {
                "Amount": amount,
                "LinkedTxn": [
                    {"TxnId": invoice_id(table.get("invoice", row)), "TxnType": "Invoice"}
                ],
            }
        ],
        "domain": "QBO",
        "sparse": False,
    }


def stamp_payment(world: World, row: int, body: dict[str, Any]) -> None:
    """Write ``SyncToken`` and ``MetaData`` from the columns."""
    table = world.tables["quickbooks.payments"]
    body["SyncToken"] = str(table.get("version", row) - 1)
    body["MetaData"] = {
        "CreateTime": quickbooks_time(table.get("created", row)),
        "LastUpdatedTime": quickbooks_time(table.get("updated", row)),
    }


def now_text(world: World) -> str:
    """The ``time`` field of a QuickBooks answer (Pacific offset, with milliseconds)."""
    ms = world.clock.peek_ms()
    text = quickbooks_time(ms)
    return text[:19] + f".{ms % 1000:03d}" + text[19:]
