"""Fixtures of the connector-hub tests: the real connectors' executables, installed by
``scripts/install_test_connectors.sh`` into ``.venv-connectors/`` (a missing one fails the test:
these tests are the proof that the hub runs real third-party connectors)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _installed(relative: str) -> str:
    path = REPO / ".venv-connectors" / relative
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"{path} is missing: run scripts/install_test_connectors.sh (make test does)",
            pytrace=False,
        )
    return str(path)


@pytest.fixture(scope="session")
def faker_command() -> str:
    """The real airbyte-source-faker 7.2.1 executable."""
    return _installed("faker/bin/source-faker")


@pytest.fixture(scope="session")
def tap_jsonl_command() -> str:
    """The real tap-jsonl 0.3.1 executable."""
    return _installed("tap-jsonl/bin/tap-jsonl")


@pytest.fixture(scope="session")
def fake_source_command() -> list[str]:
    """A tiny misbehaving Airbyte source (see fixtures/fake_airbyte_source.py)."""
    return [sys.executable, str(FIXTURES / "fake_airbyte_source.py")]
