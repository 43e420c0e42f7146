"""`type: singer`: the real tap-jsonl (singer-sdk) reading a small JSONL folder into SQLite and
PostgreSQL: selection, key properties, the global bookmark passed back, logs, failures."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from connectors_hub_helpers import last_run, raw_keys, raw_payloads, saved_states, sync

from crm_hub.errors import ConfigError, RetryableSourceError
from crm_hub.store import Store
from crm_hub.sync.singer import SINGER_STATE_STREAM

PEOPLE = (
    '{"id": "c1", "email": "ann@example.org", "updated_at": "2026-01-01T10:00:00"}\n'
    '{"id": "c2", "email": "bob@example.org"}\n'
)
MORE = '{"id": "c3", "email": "cy@example.org"}\n'


def tap_yaml(
    command: str, tmp_path: Path, *, keys: str = "primary_keys: [id], ", extra: str = ""
) -> str:
    return f"""\
  shop:
    type: singer
    command: [{command}]
    config: {{path: "{tmp_path}/data/*.jsonl", stream_name: customers, {keys}emit_state_every: 1}}
{extra}"""


def test_tap_records_land_and_the_bookmark_comes_back_next_run(
    write_project: Callable[..., Path],
    store: Store,
    tap_jsonl_command: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = write_project(
        tap_yaml(tap_jsonl_command, tmp_path),
        {"data/a.jsonl": PEOPLE, "data/b.jsonl": '{"id": "c9"}\n'},
    )
    first = sync(store, hub, "shop")
    assert raw_keys(store, "shop") == {"customers": {"c1", "c2", "c9"}}
    assert first.inserted == 3
    c1 = raw_payloads(store, "shop", "customers")["c1"]
    assert c1["updated_at"] == "2026-01-01T10:00:00"  # zone-less, as delivered
    assert c1["_sdc_filename"].endswith("a.jsonl")
    state = saved_states(store, "shop")
    assert set(state) == {SINGER_STATE_STREAM}  # one global blob, not one per stream
    bookmark = state[SINGER_STATE_STREAM]["value"]["bookmarks"]["customers"]
    assert bookmark["replication_key"] == "_sdc_last_modified"

    time.sleep(0.01)
    b = tmp_path / "data" / "b.jsonl"
    b.write_text('{"id": "c9"}\n' + MORE)
    os.utime(b, (time.time() + 5, time.time() + 5))  # a newer mtime, whatever the clock grain
    with caplog.at_level("INFO", logger="crm_hub"):
        second = sync(store, hub, "shop")  # the tap re-emits unchanged files: upserts, not dupes
    texts = [getattr(r, "fields", {}).get("text", "") for r in caplog.records]
    started = [t for t in texts if "Starting incremental sync with bookmark value" in t]
    assert started and "value: None" not in started[0]  # the saved bookmark went back in
    assert raw_keys(store, "shop") == {"customers": {"c1", "c2", "c3", "c9"}}
    assert second.inserted == 1 and second.updated == 1  # c9's _sdc_last_modified moved
    assert last_run(store, "shop") == ("succeeded", None)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_tap_without_key_properties_needs_primary_key_in_hub_yaml(
    write_project: Callable[..., Path], store: Store, tap_jsonl_command: str, tmp_path: Path
) -> None:
    hub = write_project(tap_yaml(tap_jsonl_command, tmp_path, keys=""), {"data/a.jsonl": PEOPLE})
    with pytest.raises(
        ConfigError,
        match=r"source shop: stream 'customers' has no key "
        r"properties in the tap's catalog; set `primary_key: \{customers: ",
    ):
        sync(store, hub, "shop")
    assert last_run(store, "shop")[0] == "failed"

    hub = write_project(
        tap_yaml(
            tap_jsonl_command,
            tmp_path,
            keys="",
            extra="    primary_key: {customers: id}\n    streams: [customers]\n",
        )
    )
    assert sync(store, hub, "shop").inserted == 2


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_failing_tap_error_quotes_its_stderr(
    write_project: Callable[..., Path], store: Store, tap_jsonl_command: str
) -> None:
    # Without `path` tap-jsonl still discovers, then refuses to sync: exit 1, reason on stderr.
    hub = write_project(
        f"  shop:\n    type: singer\n    command: [{tap_jsonl_command}]\n"
        "    config: {stream_name: customers}\n"
        "    primary_key: {customers: [id]}\n"
    )
    with pytest.raises(RetryableSourceError) as caught:
        sync(store, hub, "shop")
    message = caught.value.message
    assert message.startswith("source shop: connector exited with code 1; last stderr lines: ")
    assert "'path' is a required property" in message
    assert last_run(store, "shop") == ("failed", message)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_tap_logs_are_surfaced_in_our_log(
    write_project: Callable[..., Path],
    store: Store,
    tap_jsonl_command: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    hub = write_project(tap_yaml(tap_jsonl_command, tmp_path), {"data/a.jsonl": PEOPLE})
    with caplog.at_level("INFO", logger="crm_hub"):
        sync(store, hub, "shop")
    tap_lines = [r for r in caplog.records if r.getMessage() == "tap log"]
    texts = [r.fields["text"] for r in tap_lines]  # type: ignore[attr-defined]
    assert any("Beginning sync of 'customers'" in text for text in texts)
    warned = [r for r in tap_lines if "assumed to be unsorted" in r.fields["text"]]  # type: ignore[attr-defined]
    assert warned and all(r.levelname == "WARNING" for r in warned)  # level taken from the line
