"""QuickBooks' single-use refresh tokens through the hub: the connector's rotated config (its
CONTROL message) is stored at once and laid over hub.yaml on the next sync.

Real loopback HTTP to the sandbox, whose QuickBooks access tokens live TTL seconds and whose
refresh tokens die when used: the second sync has to refresh with the token the first one got.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from connectors_hub_helpers import raw_keys, sync
from cryptography.fernet import Fernet
from sqlalchemy import select

from connectors.sandbox import SandboxServer
from connectors.sandbox.config import default_token_ttl
from crm_hub.config import load_config
from crm_hub.errors import ConfigError, FatalSourceError
from crm_hub.store import Store, open_store
from crm_hub.store.runs import utcnow
from crm_hub.store.schema import connector_secrets, runs
from crm_hub.store.secrets import (
    StoredSecret,
    forget_connector_secrets,
    load_connector_secrets,
    reencrypt_connector_secrets,
    save_connector_secrets,
)
from crm_hub.sync.rotated import open_rotated

TTL = 3.0
ORIGINAL = "sandbox-quickbooks-refresh"
TOKEN_PATH = "/oauth2/v1/tokens/bearer"
CLI = [sys.executable, "-m", "crm_hub.cli"]
ROTATED_KEYS = {
    "credentials.refresh_token",
    "credentials.access_token",
    "credentials.token_expiry_date",
}


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """QuickBooks with access tokens that live TTL seconds and rotating refresh tokens."""
    with SandboxServer(
        customers=60, seed=5, token_ttl={**default_token_ttl(), "quickbooks": TTL}
    ) as running:
        yield running


def books_yaml(url: str) -> str:
    """One QuickBooks source with no access token: its first request refreshes."""
    config = {
        "base_url": f"{url}/quickbooks",
        "token_url": f"{url}/quickbooks{TOKEN_PATH}",
        "realm_id": "9341453908051276",
        "max_retries": 1,
        "backoff_factor": 0.1,
        "credentials": {
            "client_id": "sandbox-quickbooks-app",
            "client_secret": "${QB_CLIENT_SECRET}",
            "refresh_token": "${QB_REFRESH_TOKEN}",
        },
    }
    yaml = f"  books:\n    type: quickbooks\n    config: {json.dumps(config)}\n"
    return yaml + "    streams: [customers]\n"


@pytest.fixture
def hub(
    sandbox: SandboxServer, write_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> Path:
    monkeypatch.setenv("QB_CLIENT_SECRET", "sandbox-quickbooks-secret")
    monkeypatch.setenv("QB_REFRESH_TOKEN", ORIGINAL)
    return write_project(books_yaml(sandbox.url))


def stored(store: Store, source: str = "books") -> dict[str, Any]:
    """The stored rotated values of ``source``, decoded."""
    with store.read() as conn:
        rows = conn.execute(
            select(connector_secrets.c.key, connector_secrets.c.value).where(
                connector_secrets.c.source == source
            )
        ).all()
    return {key: orjson.loads(value) for key, value in rows}


def token_calls(sandbox: SandboxServer) -> list[int]:
    """Statuses of the QuickBooks token endpoint's answers so far."""
    return [r["status"] for r in sandbox.sandbox.requests if r["path"] == TOKEN_PATH]


def refresh(sandbox: SandboxServer, token: str) -> httpx.Response:
    return httpx.post(
        f"{sandbox.url}/quickbooks{TOKEN_PATH}",
        auth=("sandbox-quickbooks-app", "sandbox-quickbooks-secret"),
        data={"grant_type": "refresh_token", "refresh_token": token},
    )


def test_two_syncs_succeed_because_the_rotated_token_is_stored(
    store: Store, hub: Path, sandbox: SandboxServer
) -> None:
    first = sync(store, hub, "books")
    after_first = stored(store)
    assert first.inserted > 0
    assert set(after_first) == ROTATED_KEYS  # not the derived api_root, not unchanged keys
    assert after_first["credentials.refresh_token"] != ORIGINAL
    assert refresh(sandbox, ORIGINAL).json() == {"error": "invalid_grant"}  # spent by sync 1

    time.sleep(TTL + 0.5)  # the stored access token has expired: sync 2 must refresh
    calls_before = len(token_calls(sandbox))
    second = sync(store, hub, "books")  # hub.yaml re-read: it still says ORIGINAL

    after_second = stored(store)
    assert second.status == "succeeded" and raw_keys(store, "books")["customers"]
    assert token_calls(sandbox)[calls_before:][:1] == [200]  # refreshed with the stored token
    assert after_second["credentials.refresh_token"] not in (
        ORIGINAL,
        after_first["credentials.refresh_token"],
    )

    # The proof that storing is what made sync 2 work: without it, hub.yaml's token is dead.
    with store.begin() as conn:
        forget_connector_secrets(conn, "books")
    with pytest.raises(FatalSourceError, match="Refresh token was rejected"):
        sync(store, hub, "books")


def test_a_token_changed_in_hub_yaml_wins_over_the_stored_one(
    store: Store, hub: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sync(store, hub, "books")
    # IT re-authorises: a new refresh token (issued outside the hub) goes into hub.yaml.
    fresh = refresh(sandbox, stored(store)["credentials.refresh_token"]).json()["refresh_token"]
    monkeypatch.setenv("QB_REFRESH_TOKEN", fresh)
    source, _ = open_rotated(store, "books", load_config(hub).sources["books"])

    effective = source.config["credentials"]  # type: ignore[attr-defined]
    assert effective["refresh_token"] == fresh
    assert "credentials.refresh_token" not in stored(store)  # the stale one is forgotten
    assert effective["access_token"] == stored(store)["credentials.access_token"]


def test_unchanged_hub_yaml_keeps_the_stored_values_only_for_rotated_keys(store: Store) -> None:
    credentials = {"client_id": "a", "refresh_token": "old-1"}
    yaml_config: dict[str, Any] = {"realm_id": "1", "credentials": credentials}
    from crm_hub.config.models import SOURCE_TYPES
    from crm_hub.store.secrets import value_hash

    source = SOURCE_TYPES["quickbooks"].model_validate(
        {"type": "quickbooks", "config": yaml_config}
    )
    with store.begin() as conn:
        save_connector_secrets(
            conn,
            "books",
            {
                "credentials.refresh_token": StoredSecret("new-2", value_hash("old-1")),
                "credentials.access_token": StoredSecret("acc-2", None),
            },
            now=utcnow(),
        )
    updated, _ = open_rotated(store, "books", source)

    assert updated.config == {  # type: ignore[attr-defined]
        "realm_id": "1",
        "credentials": {"client_id": "a", "refresh_token": "new-2", "access_token": "acc-2"},
    }
    assert credentials["refresh_token"] == "old-1"  # hub.yaml's copy untouched


def test_a_crash_right_after_the_refresh_keeps_the_new_token(
    store_url: str, hub: Path, sandbox: SandboxServer, tmp_path: Path
) -> None:
    # Every query stalls: the child refreshes (rotating the token), then hangs in its first query.
    sandbox.sandbox.inject("quickbooks", "stall", seconds=20, count=5, path="/query")
    with (tmp_path / "child.err").open("wb") as errors:
        child = subprocess.Popen(
            [*CLI, "sync", "books"],
            env={**os.environ, "CRM_HUB_CONFIG": str(hub)},
            stdout=subprocess.DEVNULL,
            stderr=errors,
        )
    store = open_store(store_url)
    try:
        deadline = time.monotonic() + 60
        while "credentials.refresh_token" not in stored(store):
            assert child.poll() is None, (tmp_path / "child.err").read_text()
            assert time.monotonic() < deadline, "the child never stored a rotated token"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)  # crash: no cleanup, no final commit
        child.wait()
        saved = stored(store)["credentials.refresh_token"]
        assert refresh(sandbox, ORIGINAL).json() == {"error": "invalid_grant"}

        sandbox.sandbox.faults.clear()
        time.sleep(TTL + 0.5)  # its access token expired too: the next sync must refresh
        after = sync(store, hub, "books")

        assert after.status == "succeeded" and raw_keys(store, "books")["customers"]
        assert stored(store)["credentials.refresh_token"] != saved  # used, rotated again
        with store.read() as conn:
            statuses = [
                s for (s,) in conn.execute(select(runs.c.status).order_by(runs.c.started_at))
            ]
        assert statuses == ["failed", "succeeded"]  # the killed run is closed as interrupted
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        store.dispose()


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_rotated_values_never_reach_logs_json_or_status(
    store: Store, hub: Path, sandbox: SandboxServer
) -> None:
    env = {**os.environ, "CRM_HUB_CONFIG": str(hub), "CRM_HUB_LOG__LEVEL": "DEBUG"}
    outputs = []
    for argv in (["sync", "books", "--json"], ["status", "--json"], ["status"]):
        done = subprocess.run([*CLI, *argv], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout + done.stderr)
    values = stored(store)
    secrets = [values["credentials.refresh_token"], values["credentials.access_token"]]

    assert "stored rotated connector config" in outputs[0]  # the keys are logged...
    for text in outputs:
        assert not [s for s in secrets if s in text]  # ...never the values
    assert "sandbox-quickbooks-secret" not in outputs[0]


def test_a_subprocess_connectors_control_message_goes_to_the_listener_unlogged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from crm_hub.sync.airbyte_protocol import AirbyteAdapter

    got: list[dict[str, Any]] = []
    adapter = AirbyteAdapter("source x", {}, got.append)
    config = {"credentials": {"refresh_token": "rt-rotated-9911"}}
    control = {"type": "CONNECTOR_CONFIG", "emitted_at": 1, "connectorConfig": {"config": config}}

    assert adapter.convert({"type": "CONTROL", "control": control}) is None
    assert got == [config]
    assert "rt-rotated-9911" not in caplog.text


# --- encryption at rest (CRM_HUB_SECRETS_KEY) -------------------------------------------------


def stored_text(store: Store, key: str, source: str = "books") -> str:
    """The column text of one stored value, as a copy of the store would show it."""
    with store.read() as conn:
        return str(
            conn.execute(
                select(connector_secrets.c.value).where(
                    connector_secrets.c.source == source, connector_secrets.c.key == key
                )
            ).scalar_one()
        )


def save_one(store: Store, value: str, key: str = "credentials.refresh_token") -> None:
    with store.begin() as conn:
        save_connector_secrets(conn, "books", {key: StoredSecret(value, None)}, now=utcnow())


def loaded(store: Store) -> dict[str, Any]:
    with store.read() as conn:
        return {k: s.value for k, s in load_connector_secrets(conn, "books").items()}


def test_with_a_key_the_rotated_token_is_stored_encrypted_and_syncs_still_chain(
    store: Store, hub: Path, sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_HUB_SECRETS_KEY", Fernet.generate_key().decode())
    sync(store, hub, "books")
    first = loaded(store)["credentials.refresh_token"]
    text = stored_text(store, "credentials.refresh_token")

    assert text.startswith("fernet:") and first not in text
    time.sleep(TTL + 0.5)  # sync 2 must refresh with the token it decrypts
    assert sync(store, hub, "books").status == "succeeded"
    assert loaded(store)["credentials.refresh_token"] != first


def test_changing_keys_new_old_then_reencrypt_then_new_alone(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    save_one(store, "plain-before-any-key", key="credentials.access_token")
    monkeypatch.setenv("CRM_HUB_SECRETS_KEY", old)
    save_one(store, "rt-under-old")
    assert loaded(store) == {  # a plain value stored before the key is still read
        "credentials.access_token": "plain-before-any-key",
        "credentials.refresh_token": "rt-under-old",
    }

    monkeypatch.setenv("CRM_HUB_SECRETS_KEY", f"{new},{old}")
    with store.begin() as conn:
        assert reencrypt_connector_secrets(conn) == 2
    monkeypatch.setenv("CRM_HUB_SECRETS_KEY", new)

    assert loaded(store)["credentials.refresh_token"] == "rt-under-old"
    assert stored_text(store, "credentials.access_token").startswith("fernet:")


def test_an_encrypted_value_without_its_key_is_a_config_error_naming_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRM_HUB_SECRETS_KEY", Fernet.generate_key().decode())
    save_one(store, "rt-secret-1")

    monkeypatch.setenv("CRM_HUB_SECRETS_KEY", Fernet.generate_key().decode())
    with pytest.raises(ConfigError, match=r"books\.credentials\.refresh_token .*not in"):
        loaded(store)
    monkeypatch.delenv("CRM_HUB_SECRETS_KEY")
    with pytest.raises(ConfigError, match=r"books\.credentials\.refresh_token is encrypted"):
        loaded(store)
    with store.begin() as conn, pytest.raises(ConfigError, match="no key to encrypt with"):
        reencrypt_connector_secrets(conn)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_cli_keygen_reencrypt_and_a_mistyped_key(hub: Path, store: Store) -> None:
    save_one(store, "rt-plain-2")
    key = subprocess.run([*CLI, "secrets", "keygen"], capture_output=True, text=True, check=True)
    env = {**os.environ, "CRM_HUB_CONFIG": str(hub)}

    done = subprocess.run(
        [*CLI, "secrets", "reencrypt"], env={**env, "CRM_HUB_SECRETS_KEY": key.stdout.strip()},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    bad = subprocess.run(
        [*CLI, "secrets", "reencrypt"], env={**env, "CRM_HUB_SECRETS_KEY": "not-a-key"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "re-encrypted 1 stored credential" in done.stdout
    assert stored_text(store, "credentials.refresh_token").startswith("fernet:")
    assert bad.returncode == 2
    assert "CRM_HUB_SECRETS_KEY: Value error, key 1 is not a Fernet key" in bad.stderr
    assert "not-a-key" not in bad.stderr.replace("CRM_HUB_SECRETS_KEY", "")
