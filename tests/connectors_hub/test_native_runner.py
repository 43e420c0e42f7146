"""Native types (square, mailchimp, typeform, quickbooks): a declarative manifest run in-process
through the same Airbyte adapter as `type: airbyte`. Uses a tiny manifest of our own
(fixtures/source_hubtest) against a local HTTP server, so it does not depend on the vendor
manifests being written."""

from __future__ import annotations

import ast
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from connectors_hub_helpers import last_run, raw_keys, raw_payloads, saved_states, sync
from pytest_httpserver import HTTPServer
from sqlalchemy import select
from werkzeug import Request, Response

from connectors.sandbox import SandboxServer
from crm_hub.config import load_config
from crm_hub.errors import ConfigError, FatalSourceError
from crm_hub.mapping.stage import map_source
from crm_hub.store import Store
from crm_hub.store.schema import invoices as canonical_invoices
from crm_hub.store.schema import raw_records
from crm_hub.sync import native
from crm_hub.sync.connector_config import NATIVE_TYPES, NativeSourceConfig
from crm_hub.sync.native import NativeReader

TEMPLATES = Path(__file__).resolve().parents[2] / "crm_hub" / "templates"
MANIFEST = Path(__file__).resolve().parent / "fixtures" / "source_hubtest" / "manifest.yaml"
API_KEY = "tok-native-98765"
PAGE_1 = {
    "data": [
        {"id": "1", "email": "ann@example.org", "updated_at": "2024-01-01T00:00:00Z"},
        {"id": "2", "updated_at": "2024-02-01T00:00:00Z"},  # null email key omitted
    ],
    "next": "p2",
}
PAGE_2 = {"data": [{"id": "3", "email": "cy@example.org", "updated_at": "2024-03-01T00:00:00Z"}]}


class FakeApi:
    """Two pages of contacts behind a bearer token; remembers the `updated_since` it was sent."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.since: list[str | None] = []

    def __call__(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {API_KEY}" or self.status == 401:
            return Response('{"error": "unauthorized"}', status=401)
        self.since.append(request.args.get("updated_since"))
        page = PAGE_2 if request.args.get("cursor") == "p2" else PAGE_1
        return Response(json.dumps(page), content_type="application/json")


def native_yaml(server: HTTPServer, kind: str = "square", config: str | None = None) -> str:
    config = config or f'{{base_url: "{server.url_for("")[:-1]}", api_key: "${{HUBTEST_KEY}}"}}'
    return f"""\
  shop:
    type: {kind}
    manifest: {MANIFEST}
    config: {config}
"""


@pytest.fixture
def api(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> FakeApi:
    monkeypatch.setenv("HUBTEST_KEY", API_KEY)
    fake = FakeApi()
    httpserver.expect_request("/contacts").respond_with_handler(fake)
    return fake


def test_manifest_records_land_and_the_cursor_goes_back_next_run(
    write_project: Callable[..., Path], store: Store, httpserver: HTTPServer, api: FakeApi
) -> None:
    hub = write_project(native_yaml(httpserver))
    first = sync(store, hub, "shop")
    assert raw_keys(store, "shop") == {"contacts": {"1", "2", "3"}}
    assert first.inserted == 3
    state = saved_states(store, "shop")["contacts"]
    assert state["cursor"] == "2024-03-01T00:00:00Z"
    assert state["airbyte"]["stream"]["stream_state"] == {"updated_at": "2024-03-01T00:00:00Z"}
    assert api.since == ["2020-01-01T00:00:00Z"] * 2

    second = sync(store, hub, "shop")
    assert api.since[2:] == ["2024-03-01T00:00:00Z"] * 2  # resumed from the saved cursor
    assert (second.inserted, second.unchanged) == (0, 3)
    assert last_run(store, "shop") == ("succeeded", None)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_refused_key_is_fatal_with_the_manifests_message_and_no_secret(
    write_project: Callable[..., Path], store: Store, httpserver: HTTPServer, api: FakeApi
) -> None:
    api.status = 401
    hub = write_project(native_yaml(httpserver))
    with pytest.raises(FatalSourceError) as caught:
        sync(store, hub, "shop")
    message = caught.value.message
    assert message.startswith("source shop: The API key was refused: check api_key.")
    assert "(stream contacts)" in message and API_KEY not in message
    assert last_run(store, "shop") == ("failed", message)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_config_failing_the_manifest_spec_is_a_config_error_naming_each_key(
    write_project: Callable[..., Path], store: Store, httpserver: HTTPServer
) -> None:
    hub = write_project(native_yaml(httpserver, config="{base_url: 42}"))
    with pytest.raises(ConfigError) as caught:
        sync(store, hub, "shop")
    see = f"(see the spec in {MANIFEST})"
    assert caught.value.problems == [
        f"source shop: config.(root): 'api_key' is a required property {see}",
        f"source shop: config.base_url: 42 is not of type 'string' {see}",
    ]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_missing_manifest_is_a_config_error_recorded_in_the_run(
    write_project: Callable[..., Path], store: Store, tmp_path: Path
) -> None:
    hub = write_project("  shop:\n    type: typeform\n    manifest: nowhere/manifest.yaml\n")
    with pytest.raises(
        ConfigError,
        match=r"source shop: connector manifest .*nowhere/manifest"
        r"\.yaml not found; fix `manifest:` in hub.yaml",
    ):
        sync(store, hub, "shop")
    assert last_run(store, "shop")[0] == "failed"

    bundled = NativeReader("pos", NativeSourceConfig(type="square"), tmp_path, tmp_path / "none")
    assert bundled.streams() == {}
    with pytest.raises(
        ConfigError,
        match=r"source pos: connector manifest .*none/source_square/"
        r"manifest\.yaml not found; the square connector is not installed",
    ):
        list(bundled.read({}))


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_every_native_type_is_accepted_in_hub_yaml(write_project: Callable[..., Path]) -> None:
    sources = "".join(
        f"  {kind}_src:\n    type: {kind}\n    config: {{token: x}}\n    streams: [a]\n"
        for kind in NATIVE_TYPES
    )
    config = load_config(write_project(sources))
    assert {s.type for s in config.sources.values()} == set(NATIVE_TYPES)
    assert "token" not in repr(config.sources["square_src"])  # config hidden from repr


def vendor_config(vendor: str, sandbox_url: str) -> dict[str, object]:
    """A config of the bundled manifest pointing at the sandbox (see tests/connectors)."""
    url = f"{sandbox_url}/{vendor}"
    if vendor == "quickbooks":
        expiry = (datetime.now(UTC) + timedelta(minutes=50)).isoformat()
        credentials = {
            "client_id": "sandbox-quickbooks-app",
            "client_secret": "sandbox-quickbooks-secret",
            "refresh_token": "sandbox-quickbooks-refresh",
            "access_token": "sandbox-quickbooks-token",  # the sandbox's static token
            "token_expiry_date": expiry,
        }
        return {"credentials": credentials, "realm_id": "9341453908051276", "base_url": url}
    key = "api_key" if vendor == "mailchimp" else "access_token"
    token = {"mailchimp": "sandbox-mailchimp-key-us21"}.get(vendor, f"sandbox-{vendor}-token")
    return {key: token, "base_url": url}


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("vendor", NATIVE_TYPES)
def test_bundled_vendor_manifest_syncs_from_the_sandbox_then_resumes(
    write_project: Callable[..., Path], store: Store, vendor: str
) -> None:
    with SandboxServer(customers=60, seed=5) as sandbox:
        config = json.dumps(vendor_config(vendor, sandbox.url))
        hub = write_project(f"  {vendor}_src:\n    type: {vendor}\n    config: {config}\n")
        first = sync(store, hub, f"{vendor}_src")
        second = sync(store, hub, f"{vendor}_src")
    streams = raw_keys(store, f"{vendor}_src")
    assert first.inserted > 0 and all(streams.values()), first.streams
    assert set(saved_states(store, f"{vendor}_src")) >= set(streams)
    assert second.inserted == 0  # resumed from the saved cursors: nothing new


COMPONENTS = """
from dataclasses import dataclass

from airbyte_cdk.sources.declarative.transformations import RecordTransformation


@dataclass
class Shout(RecordTransformation):
    def transform(self, record, config=None, stream_state=None, stream_slice=None):
        record["email"] = (record.get("email") or "").upper()
"""


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_components_py_beside_the_manifest_is_used(
    write_project: Callable[..., Path],
    store: Store,
    httpserver: HTTPServer,
    api: FakeApi,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "source_shout"
    folder.mkdir()
    custom = "    transformations:\n      - type: CustomTransformation\n"
    custom += "        class_name: source_declarative_manifest.components.Shout\n"
    text = MANIFEST.read_text().replace(
        "    incremental_sync:\n", custom + "    incremental_sync:\n"
    )
    (folder / "manifest.yaml").write_text(text)
    (folder / "components.py").write_text(COMPONENTS)
    hub = write_project(
        native_yaml(httpserver).replace(str(MANIFEST), str(folder / "manifest.yaml"))
    )
    sync(store, hub, "shop")
    emails = {k: v.get("email") for k, v in raw_payloads(store, "shop", "contacts").items()}
    assert emails == {"1": "ANN@EXAMPLE.ORG", "2": "", "3": "CY@EXAMPLE.ORG"}


def test_quickbooks_deletions_land_as_deleted_invoices_and_payments(
    write_project: Callable[..., Path], store: Store, tmp_path: Path
) -> None:
    """QuickBooks hard-deletes transactions; its deleted_* CDC streams retire them in the hub."""
    mapping = TEMPLATES / "vendors" / "mappings" / "quickbooks.yaml"
    (tmp_path / "quickbooks.yaml").write_text(mapping.read_text(encoding="utf-8"))
    with SandboxServer(customers=300, seed=5) as sandbox:
        config = json.dumps(vendor_config("quickbooks", sandbox.url))
        hub = write_project(
            f"  books:\n    type: quickbooks\n    config: {config}\n"
            "    streams: [customers, invoices, payments]\n    mapping: quickbooks.yaml\n"
        )
        sync(store, hub, "books")
        map_source(store, load_config(hub), "books")
        gone = _sandbox_delete(sandbox, "quickbooks.invoices", 3)
        gone_payments = _sandbox_delete(sandbox, "quickbooks.payments", 2)
        second = sync(store, hub, "books")
        map_source(store, load_config(hub), "books")

    assert second.updated >= 5  # each deletion replaces a landed record
    assert _deleted_keys(store, "books", "invoices") == set(gone)
    assert _deleted_keys(store, "books", "payments") == set(gone_payments)
    with store.read() as conn:
        retired = conn.execute(
            select(canonical_invoices.c.source_id).where(
                canonical_invoices.c.source == "books", canonical_invoices.c.deleted
            )
        ).scalars()
        assert set(retired) == set(gone)
    # The deletion streams keep their own cursor; nothing lands under their names.
    assert {"deleted_invoices", "deleted_payments"} <= set(saved_states(store, "books"))
    assert set(raw_keys(store, "books")) == {"customers", "invoices", "payments"}


def _sandbox_delete(sandbox: SandboxServer, table: str, count: int) -> list[str]:
    """Delete ``count`` records of a sandbox table; returns their ids once in the past."""
    response = httpx.post(
        f"{sandbox.url}/_sandbox/mutate",
        json={"vendor": "quickbooks", "table": table, "deletes": count},
    )
    response.raise_for_status()
    time.sleep(max(0.0, int(time.time()) + 1.05 - time.time()))  # QuickBooks counts whole seconds
    return list(response.json()["deleted"])


def _deleted_keys(store: Store, source: str, stream: str) -> set[str]:
    with store.read() as conn:
        rows = conn.execute(
            select(raw_records.c.record_key).where(
                raw_records.c.source == source,
                raw_records.c.stream == stream,
                raw_records.c.deleted,
            )
        ).scalars()
        return set(rows)


@pytest.mark.parametrize(
    ("version", "fixed"),
    [
        ((3, 11, 7), False),
        ((3, 11, 8), True),
        ((3, 12, 1), False),
        ((3, 12, 2), True),
        ((3, 13, 0), True),
    ],  # fmt: skip
)
def test_the_ast_race_is_known_fixed_from_3_11_8_and_3_12_2(
    version: tuple[int, int, int], fixed: bool
) -> None:
    assert native._ast_race_fixed(version) is fixed


def test_native_reads_parse_one_text_at_a_time_where_cpython_races(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ast, "parse", ast.parse)  # restored after the test
    monkeypatch.setattr(native, "_ast_race_fixed", lambda: False)
    native._serialize_ast_parse()
    native._serialize_ast_parse()  # once: not wrapped twice
    wrapped = ast.parse.__wrapped__  # type: ignore[attr-defined]
    assert not hasattr(wrapped, "__wrapped__")
    threads = [threading.Thread(target=ast.literal_eval, args=("{'a': [1, 2]}",)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ast.literal_eval("{'a': [1, 2]}") == {"a": [1, 2]}
