"""The Airbyte message adapter and state round trip on tiny inline messages: every kind of
state (per stream, global, legacy), omitted null keys, odd records, catalogs."""

from __future__ import annotations

from typing import Any

import pytest

from crm_hub.errors import ConfigError, FatalSourceError, RetryableSourceError
from crm_hub.sync.airbyte_protocol import (
    GLOBAL_STREAM,
    LEGACY_STREAM,
    AirbyteAdapter,
    SelectedStream,
    configure_catalog,
    connector_state,
)
from crm_hub.sync.messages import RecordMessage, RejectMessage, StateMessage

PEOPLE = {"people": SelectedStream("people", ["id"], ["updated"], incremental=True)}


def adapter() -> AirbyteAdapter:
    return AirbyteAdapter("source api", PEOPLE)


def stream_state(name: str, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "STREAM",
        "stream": {"stream_descriptor": {"name": name}, "stream_state": value},
    }


def test_per_stream_state_is_saved_by_stream_and_passed_back_as_a_list() -> None:
    blob = {**stream_state("people", {"updated": "2026-01-01T10:00:00"}), "sourceStats": {}}
    saved = adapter().convert({"type": "STATE", "state": blob})
    assert saved == StateMessage(
        "people",
        {
            "airbyte": stream_state("people", {"updated": "2026-01-01T10:00:00"}),
            "cursor": ("2026-01-01T10:00:00"),
        },
    )
    assert connector_state({"people": saved.state, "gone": {"x": 1}}, ["people"]) == [
        stream_state("people", {"updated": "2026-01-01T10:00:00"})
    ]


def test_global_state_wins_and_legacy_state_goes_back_as_its_data() -> None:
    shared = {"type": "GLOBAL", "global": {"shared_state": {"lsn": 7}, "stream_states": []}}
    global_message = adapter().convert({"type": "STATE", "state": shared})
    assert global_message == StateMessage(GLOBAL_STREAM, {"airbyte": shared})
    legacy_message = adapter().convert({"type": "STATE", "state": {"data": {"people": 3}}})
    assert legacy_message == StateMessage(LEGACY_STREAM, {"airbyte": {"data": {"people": 3}}})

    assert connector_state({GLOBAL_STREAM: {"airbyte": shared}}, ["people"]) == [shared]
    assert connector_state({LEGACY_STREAM: legacy_message.state}, ["people"]) == {"people": 3}
    assert connector_state({}, ["people"]) is None


def test_records_tolerate_omitted_keys_and_odd_data() -> None:
    convert = adapter().convert
    assert convert({"type": "RECORD", "record": {"stream": "people", "data": {"id": 1}}}) == (
        RecordMessage("people", {"id": 1})
    )
    deleted = {"id": 2, "_ab_cdc_deleted_at": "2026-01-01T00:00:00"}
    assert convert({"type": "RECORD", "record": {"stream": "people", "data": deleted}}).deleted  # type: ignore[union-attr]
    odd = convert({"type": "RECORD", "record": {"stream": "people", "data": [1, 2]}})
    assert isinstance(odd, RejectMessage) and odd.reason_code == "not_an_object"
    with pytest.raises(FatalSourceError, match="stream 'pets', which the hub did not ask for"):
        convert({"type": "RECORD", "record": {"stream": "pets", "data": {}}})
    for quiet in ({"type": "LOG"}, {"type": "TRACE"}, {"type": "SPEC"}, {}):
        assert convert(quiet) is None


def test_first_trace_error_decides_the_error_class_and_message() -> None:
    reader = adapter()
    for failure_type, text in (("transient_error", "503 from API"), ("config_error", "summary")):
        error = {"message": text, "failure_type": failure_type, "internal_message": "inside"}
        reader.convert({"type": "TRACE", "trace": {"type": "ERROR", "error": error}})
    failure = reader.failure(1, "last line")
    assert isinstance(failure, RetryableSourceError)
    assert failure.message == (
        "source api: 503 from API (and 1 more error(s)); connector exited with code 1; "
        "last stderr lines: last line"
    )
    assert adapter().failure(0) is None
    assert str(adapter().failure(-9)) == "source api: connector was killed by signal 9"


def test_catalog_is_incremental_where_supported_with_keys_from_catalog_or_hub_yaml() -> None:
    catalog = {
        "streams": [
            {
                "name": "people",
                "supported_sync_modes": ["full_refresh", "incremental"],
                "source_defined_cursor": True,
                "default_cursor_field": ["updated"],
                "source_defined_primary_key": [["id"]],
            },
            {"name": "events", "supported_sync_modes": ["full_refresh"]},
        ]
    }
    configured, selected = configure_catalog("source api", catalog, None, {"events": ["uuid"]})
    modes = {s["stream"]["name"]: (s["sync_mode"], s["primary_key"]) for s in configured["streams"]}
    assert modes == {"people": ("incremental", [["id"]]), "events": ("full_refresh", [["uuid"]])}
    assert selected["people"].cursor_field == ["updated"]

    with pytest.raises(ConfigError) as caught:
        configure_catalog("source api", catalog, ["people", "pets"], {"events": ["uuid"]})
    assert caught.value.problems == [
        "source api: stream 'pets' is not in the connector's catalog (streams: events, people); "
        "fix `streams:` in hub.yaml",
        "source api: `primary_key` names stream 'events' which is not read (streams read: "
        "people); remove it or add the stream to `streams:`",
    ]
