"""Echo suppression at the map stage's write (crm_hub.mapping.echoes), on tiny inline members:
what the hub wrote into the audience (publish_state + publish_echoes) coming back is no news."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from crm_hub.mapping.batches import Batch
from crm_hub.mapping.echoes import suppress_echoes
from crm_hub.store import Store
from crm_hub.store.canonical import row_values, upsert_canonical
from crm_hub.store.erasures import value_hash
from crm_hub.store.schema import publish_echoes, publish_state, source_customers

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
SENT = {"email": "ann@example.com", "first_name": "Catherine", "last_name": "Chaudhry"}


def member(**changes: Any) -> dict[str, Any]:
    """Ann's audience member as the map stage makes it (before the hub wrote to it)."""
    row = {
        "source": "news", "source_id": "L1:ann", "email": "ann@example.com",
        "first_name": "Cat", "last_name": "Chaudhry", "full_name": "Cat Chaudhry",
        "branch": "soho", "consents": {"email": {"granted": True, "at": T0.isoformat()}},
        "attributes": {"tags": ["Soho"], "status": "subscribed"}, "updated_at": T0,
        "stream": "members", "raw_id": 1, "raw_change_seq": 1, "mapped_at": T0, "deleted": False,
    }  # fmt: skip
    return {**row, **changes}


def the_hub_wrote(store: Store) -> None:
    """The `newsletter` push: golden names, consent, the `hub: vip` tag."""
    with store.begin() as conn:
        conn.execute(publish_state.insert().values(
            destination="newsletter", master_id="m_ann", payload_hash="x", sent_at=T1,
            payload={"status": "active", "fields": SENT, "segments": ["vip"]},
        ))  # fmt: skip
        conn.execute(publish_echoes.insert().values(
            source="news", email_hash=value_hash("ann@example.com"), destination="newsletter",
            master_id="m_ann", written={"consent": {"email": True}, "labels": ["hub: vip"]},
            sent_at=T1,
        ))  # fmt: skip


def known(store: Store) -> None:
    with store.begin() as conn:
        upsert_canonical(conn, "source_customers", [member()])


def batch_of(*rows: dict[str, Any], lists: bool = False) -> Batch:
    batch = Batch()
    if lists:  # as worker processes hand them over
        batch.values["source_customers"] = [row_values("source_customers", r) for r in rows]
    else:
        batch.rows["source_customers"] = {r["source_id"]: r for r in rows}
    return batch


def suppress(store: Store, batch: Batch) -> int:
    with store.begin() as conn:
        return suppress_echoes(conn, "news", batch)


def written(batch: Batch) -> list[dict[str, Any]]:
    rows = list(batch.rows.get("source_customers", {}).values())
    names = [c.name for c in source_customers.columns if c.name != "id"]
    rows += [dict(zip(names, v, strict=True)) for v in batch.values.get("source_customers", [])]
    return rows


# Ann's member after the push: the golden name, the consent re-stamped, the hub's tag.
ECHO = {
    "first_name": "Catherine", "full_name": "Catherine Chaudhry", "updated_at": T1,
    "consents": {"email": {"granted": True, "at": T1.isoformat()}},
    "attributes": {"tags": ["Soho", "hub: vip"], "status": "subscribed"}, "raw_change_seq": 9,
}  # fmt: skip


@pytest.mark.parametrize("lists", [False, True], ids=["rows", "worker_lists"])
def test_a_known_member_holding_only_what_the_hub_wrote_is_not_written(
    lite: Store, lists: bool
) -> None:
    known(lite)
    the_hub_wrote(lite)
    batch = batch_of(member(**ECHO), lists=lists)

    assert suppress(lite, batch) == 1
    assert written(batch) == []  # the row keeps raw_change_seq 1: no work downstream


def test_a_genuine_edit_beside_the_echoes_is_written_and_a_hub_tag_is_no_branch(
    lite: Store,
) -> None:
    known(lite)
    the_hub_wrote(lite)
    batch = batch_of(member(**ECHO, address_line1="12 Echo Lane", branch="hub: vip"))

    assert suppress(lite, batch) == 0
    [row] = written(batch)
    assert (row["address_line1"], row["first_name"]) == ("12 Echo Lane", "Catherine")
    assert row["branch"] == "soho"  # put back: a label the hub wrote
    assert row["attributes"]["tags"] == ["Soho"]


def test_an_opt_out_in_the_audience_is_news_even_with_only_echoes_beside_it(lite: Store) -> None:
    known(lite)
    the_hub_wrote(lite)
    withdrawn = {**ECHO, "consents": {"email": {"granted": False, "at": T1.isoformat()}},
                 "attributes": {"tags": ["Soho"], "status": "subscribed"}}  # fmt: skip
    batch = batch_of(member(**withdrawn))

    assert suppress(lite, batch) == 0 and len(written(batch)) == 1


def test_a_member_the_hub_created_is_no_new_record(lite: Store) -> None:
    the_hub_wrote(lite)
    created = member(**ECHO, source_id="L1:new", branch=None)

    batch = batch_of(created)

    assert suppress(lite, batch) == 1 and written(batch) == []


def test_members_of_a_source_the_hub_never_wrote_to_pass_untouched(lite: Store) -> None:
    known(lite)
    batch = batch_of(member(**ECHO))

    assert suppress(lite, batch) == 0
    assert written(batch) == [member(**ECHO)]
