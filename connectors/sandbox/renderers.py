"""Wire each table of a world to the vendor module that renders its rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from connectors.sandbox import (
    hubspot_records,
    mailchimp_records,
    quickbooks_records,
    square_records,
    typeform_records,
)

if TYPE_CHECKING:
    from connectors.sandbox.world import World

Render = Callable[["World", int], dict[str, Any]]
Stamp = Callable[["World", int, dict[str, Any]], None]

_TABLES: dict[str, tuple[Render, Stamp]] = {
    "square.customers": (square_records.render_customer, square_records.stamp_customer),
    "square.orders": (square_records.render_order, square_records.stamp_order),
    "mailchimp.members": (mailchimp_records.render_member, mailchimp_records.stamp_member),
    "typeform.responses": (typeform_records.render_response, typeform_records.stamp_response),
    "quickbooks.customers": (quickbooks_records.render_customer, quickbooks_records.stamp_customer),
    "quickbooks.invoices": (quickbooks_records.render_invoice, quickbooks_records.stamp_invoice),
    "quickbooks.payments": (quickbooks_records.render_payment, quickbooks_records.stamp_payment),
    "hubspot.contacts": (hubspot_records.render_contact, hubspot_records.stamp_contact),
}


def _mailchimp_record_id(world: World, row: int) -> str:
    table = world.tables["mailchimp.members"]
    list_id = mailchimp_records.list_id(world, table.get("list", row))
    return (
        f"{list_id}:{mailchimp_records.subscriber_hash(mailchimp_records.member_email(world, row))}"
    )


_RECORD_IDS: dict[str, Callable[[World, int], str]] = {
    "square.customers": square_records.customer_id,
    "mailchimp.members": _mailchimp_record_id,
    "typeform.responses": typeform_records.response_token,
    "quickbooks.customers": lambda _world, row: quickbooks_records.customer_id(row),
    "hubspot.contacts": lambda _world, row: hubspot_records.contact_id(row),
}


def attach(world: World) -> None:
    """Give every table of ``world`` its renderer and stamper, and register people-record ids."""
    for name, (render, stamp) in _TABLES.items():
        table = world.tables[name]
        table.renderer = _bind_render(world, render)
        table.stamper = _bind_stamp(world, stamp)
    for name, record_id in _RECORD_IDS.items():
        world.record_ids[name] = _bind_id(world, record_id)


def _bind_render(world: World, render: Render) -> Callable[[int], dict[str, Any]]:
    return lambda row: render(world, row)


def _bind_stamp(world: World, stamp: Stamp) -> Callable[[int, dict[str, Any]], None]:
    return lambda row, body: stamp(world, row, body)


def _bind_id(world: World, record_id: Callable[[World, int], str]) -> Callable[[int], str]:
    return lambda row: record_id(world, row)
