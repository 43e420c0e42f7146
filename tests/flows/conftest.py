"""Prefect flow tests: one Prefect test harness (a temporary API server, ~7 s) per module,
and `crm-hub init` projects on each store backend."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

# Offline machines: Prefect's analytics would try DNS. Its home (local result storage, logs)
# goes to a throw-away folder, never the developer's ~/.prefect.
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="crm-hub-prefect-"))


@pytest.fixture(scope="module")
def prefect_harness() -> Iterator[None]:
    """A temporary Prefect API server and database, started once per module and stopped after
    it: its background threads touch the global `random` state, which other tests in the same
    worker (hypothesis strategies) must not see. Modules using it share one xdist group."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness():
        yield


def _init_project(directory: Path, store_url: str) -> Path:
    # A subprocess, as a user runs it (in-process, the CLI would point crm-hub's log handler
    # at a captured stream that is closed afterwards).
    result = subprocess.run(
        [sys.executable, "-m", "crm_hub.cli", "init", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    hub = directory / "hub.yaml"
    hub.write_text(hub.read_text().replace("sqlite:///crm-hub.db", store_url))
    return hub


@pytest.fixture
def init_project() -> Callable[[Path, str], Path]:
    """`crm-hub init` into a folder with the store at a URL; returns its hub.yaml."""
    return _init_project


@pytest.fixture
def project(tmp_path: Path, store_url: str) -> Path:
    """The folder of a `crm-hub init` project on this test's store (SQLite or PostgreSQL)."""
    return _init_project(tmp_path / "cafe", store_url).parent


@pytest.fixture
def sqlite_project(tmp_path: Path) -> Path:
    """The folder of a `crm-hub init` project on a SQLite store (behaviour, not backend, tests)."""
    return _init_project(tmp_path / "cafe", f"sqlite:///{tmp_path / 'store.db'}").parent
