"""Fixtures of the target tests: a fresh loopback sandbox per test, configs pointing at it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.sandbox import SandboxConfig, SandboxServer


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    """A small world with the vendors' real rate limits on."""
    with SandboxServer(SandboxConfig(seed=7, customers=150)) as running:
        yield running


@pytest.fixture
def rejections(tmp_path: Path) -> Path:
    """Where a run's rejections file goes."""
    return tmp_path / "rejected.jsonl"


FAST_RETRIES = {"backoff_seconds": 0.05, "backoff_max_seconds": 0.2, "timeout_seconds": 5}


@pytest.fixture
def mailchimp_config(sandbox: SandboxServer, rejections: Path) -> dict[str, Any]:
    """target-crmhub-mailchimp config for the sandbox's first audience."""
    return {
        "api_key": "sandbox-mailchimp-key-us21",
        "base_url": sandbox.vendor_url("mailchimp"),
        "list_id": sandbox.info()["vendors"]["mailchimp"]["list_ids"][0],
        "rejections_path": str(rejections),
        **FAST_RETRIES,
    }


@pytest.fixture
def hubspot_config(sandbox: SandboxServer, rejections: Path) -> dict[str, Any]:
    """target-crmhub-hubspot config for the sandbox."""
    return {
        "access_token": "sandbox-hubspot-token",
        "base_url": sandbox.vendor_url("hubspot"),
        "rejections_path": str(rejections),
        **FAST_RETRIES,
    }


@pytest.fixture
def webhook_config(sandbox: SandboxServer, rejections: Path) -> dict[str, Any]:
    """target-crmhub-webhook config posting to the sandbox receiver's ``crm`` endpoint."""
    return {
        "url": f"{sandbox.vendor_url('webhook')}/crm",
        "secret": sandbox.info()["vendors"]["webhook"]["secret"],
        "rejections_path": str(rejections),
        **FAST_RETRIES,
    }
