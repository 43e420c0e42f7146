"""`crm-hub erase PERSON`: the right to erasure (GDPR art. 17) in one command."""

from __future__ import annotations

from typing import Annotated

import typer

from crm_hub.cli.common import ConfigOption, JsonOption, console, emit_json, handle_errors, load

PERSON_HELP = "A master id (m_...), a record (SOURCE:SOURCE_ID), an e-mail or a phone number."


def register(app: typer.Typer) -> None:
    """Add the erase command."""
    app.command("erase")(erase_command)


@handle_errors
def erase_command(
    person: Annotated[str, typer.Argument(help=PERSON_HELP)],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    reason: Annotated[
        str | None,
        typer.Option(help="Why (e.g. a ticket number); stored with the tombstones, never data."),
    ] = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Erase a person everywhere in the store and keep them from coming back.

    Deletes their raw records, customer rows, orders, invoices, payments, events, links,
    profile, traits, segment memberships, review pairs, overrides and rejected payloads, in
    one transaction, and keeps hashes (never values) of their e-mails, phones and record keys
    so that sync and map drop them if a source sends them again. The next `crm-hub publish`
    tells every destination that has them to delete them. It cannot be undone, and it cannot
    reach the sources themselves or anyone's backups: erase them there too.
    """
    from crm_hub.erase import erase_person, preview_erase

    _, store = load(config)
    master_id, records = preview_erase(store, person)
    if not yes:
        listed = ", ".join(f"{s}:{i}" for s, i in records) or "no source records"
        console.print(f"erase {master_id} ({listed})?")
        if not typer.confirm("This cannot be undone. Erase?", default=False):
            raise typer.Exit(1)
    result = erase_person(store, master_id, reason=reason)
    if json_output:
        emit_json({"ok": True, **result.as_dict()})
        return
    if result.already_erased and not result.records:
        console.print(f"erase: {master_id} was already erased; nothing left to delete")
        return
    rows = sum(result.deleted.values())
    pending = ", ".join(result.pending) or "none"
    console.print(
        f"erase: {master_id} erased: {result.records} record(s), {rows:,} row(s) deleted, "
        f"{result.tombstones} tombstone(s); destinations to tell on the next publish: {pending}"
    )
