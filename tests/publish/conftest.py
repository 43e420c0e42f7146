"""Fixtures of the publish tests: a loopback sandbox playing the vendors, hub.yaml snippets
pointing at it, and a SQLite store for the tests that exercise the destinations rather than
the store (the store-heavy ones run on both backends through ``store``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.sandbox import SandboxConfig, SandboxServer
from crm_hub.store import Store, open_store

ROOT = Path(__file__).parents[2]
TARGET_JSONL = ROOT / ".venv-connectors" / "target-jsonl" / "bin" / "target-jsonl"
TARGET_CSV = ROOT / ".venv-connectors" / "target-csv" / "bin" / "target-csv"
FAST = "    backoff_seconds: 0.05\n    backoff_max_seconds: 0.2\n    timeout_seconds: 5\n"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """A small vendor world with the vendors' real rate limits on."""
    with SandboxServer(SandboxConfig(seed=7, customers=150)) as running:
        yield running


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[Store]:
    """A SQLite store in the test's folder."""
    opened = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    yield opened
    opened.dispose()


def mailchimp_yaml(sandbox: SandboxServer, name: str = "news", extra: str = "") -> str:
    """A mailchimp destination on the sandbox's first audience."""
    list_id = sandbox.info()["vendors"]["mailchimp"]["list_ids"][0]
    return (
        f"  {name}:\n    type: mailchimp\n    api_key: sandbox-mailchimp-key-us21\n"
        f"    list_id: {list_id}\n    base_url: {sandbox.vendor_url('mailchimp')}\n"
        f"    fields: [email, first_name, last_name]\n"
        f"    mapping: {{first_name: FNAME, last_name: LNAME}}\n{FAST}{extra}"
    )
