"""`type: airbyte`: the real airbyte-source-faker synced into SQLite and PostgreSQL, and a tiny
misbehaving source for what real connectors rarely do on cue (crash, hang, report errors)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from connectors_hub_helpers import last_run, raw_keys, raw_payloads, saved_states, sync

from crm_hub.errors import ConfigError, FatalSourceError, RetryableSourceError
from crm_hub.store import Store

USERS = 300
sqlite_only = pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)


def faker_yaml(command: str, *, always_updated: bool = False, extra: str = "") -> str:
    updated = str(always_updated).lower()
    return f"""\
  faker:
    type: airbyte
    command: [{command}]
    config: {{count: {USERS}, seed: 7, records_per_slice: 100, always_updated: {updated},
              parallelism: 1}}
    timeout_seconds: 60
{extra}"""


def fake_yaml(command: list[str], config: dict[str, object], extra: str = "") -> str:
    return f"""\
  fake:
    type: airbyte
    command: {json.dumps(command)}
    config: {json.dumps(config)}
{extra}"""


def test_faker_lands_every_stream_saves_state_and_resyncs_incrementally(
    write_project: Callable[..., Path], store: Store, faker_command: str
) -> None:
    hub = write_project(faker_yaml(faker_command))
    first = sync(store, hub, "faker")

    keys = raw_keys(store, "faker")
    assert keys["users"] == {str(i) for i in range(1, USERS + 1)}
    assert keys["purchases"] and keys["products"]
    assert first.inserted == first.read == sum(map(len, keys.values()))
    user = raw_payloads(store, "faker", "users")["1"]
    assert user["id"] == 1 and "updated_at" in user  # as delivered: ints stay ints
    states = saved_states(store, "faker")
    assert set(states) == {"users", "purchases", "products"}
    users_state = states["users"]["airbyte"]
    assert users_state["type"] == "STREAM" and "sourceStats" not in users_state
    assert users_state["stream"]["stream_state"]["loop_offset"] == USERS
    assert states["users"]["cursor"] == users_state["stream"]["stream_state"]["updated_at"]

    second = sync(store, hub, "faker")  # faker resumes from the state it is given: nothing new
    assert (second.read, second.inserted, second.updated) == (0, 0, 0)
    assert raw_keys(store, "faker") == keys
    assert last_run(store, "faker") == ("succeeded", None)


@sqlite_only
def test_faker_re_emitting_everything_updates_without_duplicates(
    write_project: Callable[..., Path], store: Store, faker_command: str
) -> None:
    extra = "    streams: [users]\n"
    hub = write_project(faker_yaml(faker_command, always_updated=True, extra=extra))
    first = sync(store, hub, "faker")
    time.sleep(1.1)  # faker's updated_at has one-second resolution
    second = sync(store, hub, "faker")
    assert first.inserted == USERS and second.inserted == 0
    assert second.read == second.updated == USERS
    assert set(raw_keys(store, "faker")) == {"users"}
    assert set(saved_states(store, "faker")) == {"users"}


@sqlite_only
def test_faker_config_error_is_surfaced_from_its_trace_message(
    write_project: Callable[..., Path], store: Store, faker_command: str
) -> None:
    hub = write_project(
        f"  faker:\n    type: airbyte\n    command: [{faker_command}]\n"
        "    config: {count: not-a-number}\n"
    )
    with pytest.raises(FatalSourceError) as caught:
        sync(store, hub, "faker")
    message = caught.value.message
    assert message.startswith("source faker (discover): Config validation error")
    assert "'not-a-number' is not of type 'integer'" in message
    assert "exited with code 1" in message
    assert "Traceback" in (caught.value.detail or "")  # the stack trace: detail, not message
    assert last_run(store, "faker") == ("failed", message)


def test_crash_keeps_what_came_before_the_last_state_and_quotes_stderr(
    write_project: Callable[..., Path],
    store: Store,
    fake_source_command: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FAKE_API_KEY", "sk-live-123456")
    stderr = [
        "connecting with key sk-live-123456",
        "Traceback (most recent call last):",
        "RuntimeError: database exploded",
    ]
    config = {
        "records": 40,
        "state_every": 10,
        "fail_after": 25,
        "stderr": stderr,
        "api_key": "${FAKE_API_KEY}",
    }
    hub = write_project(fake_yaml(fake_source_command, config))
    with pytest.raises(RetryableSourceError) as caught:
        sync(store, hub, "fake")
    message = caught.value.message
    assert message.startswith("source fake: connector exited with code 1; last stderr lines: ")
    assert message.endswith("RuntimeError: database exploded")
    assert "sk-live-123456" not in message and "key ***" in message  # secrets redacted
    assert last_run(store, "fake") == ("failed", message)
    state = saved_states(store, "fake")["people"]
    assert state["airbyte"]["stream"]["stream_state"] == {"next": 20}  # never past the data
    landed = raw_keys(store, "fake")["people"]
    assert {f"p{n}" for n in range(20)} <= landed <= {f"p{n}" for n in range(25)}

    hub = write_project(fake_yaml(fake_source_command, {"records": 40, "state_every": 10}))
    resumed = sync(store, hub, "fake")  # resumes at 20: what was re-read is unchanged
    assert resumed.read == 20 and resumed.inserted == 40 - len(landed)
    assert raw_keys(store, "fake")["people"] == {f"p{n}" for n in range(40)}


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        ("    timeout_seconds: 1\n", r"wrote nothing for 1 s \(timeout_seconds=1\) and was killed"),
        ("    max_seconds: 1\n", r"ran longer than max_seconds=1 and was killed"),
    ],
    ids=["silent-for-timeout_seconds", "running-past-max_seconds"],
)
def test_hung_connector_and_its_children_are_killed(
    write_project: Callable[..., Path],
    store: Store,
    fake_source_command: list[str],
    tmp_path: Path,
    limits: str,
    expected: str,
) -> None:
    pid_file = tmp_path / "pids.json"
    config = {"records": 40, "state_every": 5, "hang_after": 12, "pid_file": str(pid_file)}
    hub = write_project(fake_yaml(fake_source_command, config, limits))
    started = time.monotonic()
    with pytest.raises(RetryableSourceError, match=r"^source fake: connector " + expected):
        sync(store, hub, "fake")
    assert time.monotonic() - started < 15
    assert last_run(store, "fake")[0] == "failed"
    for pid in json.loads(pid_file.read_text()):  # the connector and its grandchild
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    assert saved_states(store, "fake")["people"]["airbyte"]["stream"]["stream_state"] == {
        "next": 10
    }


@pytest.mark.parametrize(
    ("failure_type", "error"),
    [("config_error", FatalSourceError), ("transient_error", RetryableSourceError)],
    ids=["config-error-is-fatal", "transient-error-is-retryable"],
)
def test_trace_error_carries_the_connectors_message_and_detail(
    write_project: Callable[..., Path],
    store: Store,
    fake_source_command: list[str],
    failure_type: str,
    error: type[Exception],
) -> None:
    hub = write_project(fake_yaml(fake_source_command, {"records": 5, "trace": failure_type}))
    with pytest.raises(error) as caught:
        sync(store, hub, "fake")
    assert caught.value.message == (  # type: ignore[attr-defined]
        "source fake: The API key was refused (stream people); connector exited with code 1"
    )
    assert caught.value.detail == "401 Unauthorized from /people"  # type: ignore[attr-defined]
    assert len(raw_keys(store, "fake")["people"]) == 5  # records before the error are kept


def test_stream_without_primary_key_needs_one_in_hub_yaml(
    write_project: Callable[..., Path],
    store: Store,
    fake_source_command: list[str],
) -> None:
    hub = write_project(fake_yaml(fake_source_command, {"records": 3, "no_key": True}))
    with pytest.raises(
        ConfigError,
        match="stream 'people' has no primary key in the catalog; "
        r"set `primary_key: \{people: \[<field>, ...\]\}`",
    ):
        sync(store, hub, "fake")
    assert last_run(store, "fake")[0] == "failed"

    hub = write_project(
        fake_yaml(
            fake_source_command, {"records": 3, "no_key": True}, "    primary_key: {people: id}\n"
        )
    )
    assert sync(store, hub, "fake").inserted == 3


def test_unknown_stream_and_missing_command_are_config_errors(
    write_project: Callable[..., Path],
    store: Store,
    fake_source_command: list[str],
) -> None:
    hub = write_project(fake_yaml(fake_source_command, {"records": 3}, "    streams: [persons]\n"))
    with pytest.raises(
        ConfigError,
        match=r"stream 'persons' is not in the connector's catalog "
        r"\(streams: people\)",
    ):
        sync(store, hub, "fake")
    hub = write_project("  gone:\n    type: airbyte\n    command: [.venv-x/bin/source-gone]\n")
    with pytest.raises(
        ConfigError,
        match=r"source gone: command '.venv-x/bin/source-gone' not "
        r"found or not executable \(looked in /.*/.venv-x/bin/source-gone\)",
    ):
        sync(store, hub, "gone")
