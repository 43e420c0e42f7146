"""Fixtures for the vendor sandbox tests: a tiny world served on a real loopback socket."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sandbox_helpers import CUSTOMERS, SEED

from connectors.sandbox import SandboxConfig, SandboxServer, World, build_world


@pytest.fixture(scope="session")
def world() -> World:
    """A small read-only world (tests that change data use their own server)."""
    return build_world(SEED, CUSTOMERS)


@pytest.fixture
def sandbox_config() -> SandboxConfig:
    """Rate limits off so paging tests run at full speed; tests needing limits build their own."""
    return SandboxConfig(seed=SEED, customers=CUSTOMERS, enforce_rate_limits=False)


@pytest.fixture
def server(sandbox_config: SandboxConfig) -> Iterator[SandboxServer]:
    """A fresh sandbox per test (build + start + stop is a few tens of milliseconds)."""
    with SandboxServer(sandbox_config) as running:
        yield running


@pytest.fixture
def client(server: SandboxServer) -> Iterator[httpx.Client]:
    """An HTTP client on the sandbox base URL."""
    with httpx.Client(base_url=server.url, timeout=5.0) as http:
        yield http


@pytest.fixture
def info(server: SandboxServer) -> dict[str, Any]:
    """``/_sandbox/info`` of the running sandbox."""
    return server.info()
