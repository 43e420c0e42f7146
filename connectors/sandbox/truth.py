"""Ground truth: which real person (and household) every people record belongs to.

Rows are ``system,record_id,person_id,household_id,deleted``. ``record_id`` is the id a connector
sees as the primary key: Square customer ``id``, Mailchimp ``<list_id>:<member id>``, Typeform
``response_id``, QuickBooks customer ``Id``, HubSpot contact ``id``. Records created through the
vendor APIs by a client (not seeded, not added by ``mutate``) belong to nobody and are left out.
Deleted records stay in, flagged, because a hub may still hold them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from connectors.sandbox.world import PEOPLE_TABLES, World

HEADER = ("system", "record_id", "person_id", "household_id", "deleted")


@dataclass(frozen=True, slots=True)
class TruthRow:
    """One people record and the real person behind it."""

    system: str
    record_id: str
    person_id: str
    household_id: str
    deleted: bool


def truth_rows(world: World, systems: set[str] | None = None) -> Iterator[TruthRow]:
    """Yield the ground truth of the world, system by system, in row order.

    Args:
        world: the world.
        systems: restrict to these systems (default: all five).

    Yields:
        One ``TruthRow`` per people record that belongs to a real person.
    """
    for system, table_name in PEOPLE_TABLES.items():
        if systems is not None and system not in systems:
            continue
        table = world.tables[table_name]
        record_id = world.record_ids[table_name]
        with world.lock:
            count = len(table)
        for row in range(count):
            with world.lock:  # never held across the yield: a slow reader must not block writers
                person_index = table.get("person", row)
                if person_index < 0:
                    continue
                item = TruthRow(
                    system=system,
                    record_id=record_id(row),
                    person_id=f"P{person_index:07d}",
                    household_id=f"H{world.person_household[person_index]:07d}",
                    deleted=bool(table.get("deleted", row)),
                )
            yield item


def truth_csv_chunks(
    world: World, systems: set[str] | None = None, rows_per_chunk: int = 2000
) -> Iterator[bytes]:
    """The ground truth as CSV (header first), in UTF-8 chunks for streaming."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER)
    pending = 0
    for row in truth_rows(world, systems):
        writer.writerow(
            (row.system, row.record_id, row.person_id, row.household_id, int(row.deleted))
        )
        pending += 1
        if pending >= rows_per_chunk:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    if buffer.tell():
        yield buffer.getvalue().encode("utf-8")
