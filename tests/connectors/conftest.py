"""Fixtures for the source connectors: the loopback vendor sandbox, on a free port."""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator

import pytest

from connectors.sandbox import SandboxServer

# airbyte-cdk marks some of its own classes experimental when it defines them, at import. The
# project's filterwarnings ignores that warning, but `pytest -W error` on the command line
# overrides the ini filters, so the CDK is imported here, once, with only that warning ignored.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "This class is experimental", DeprecationWarning)
    import airbyte_cdk.test.standard_tests  # noqa: F401


@pytest.fixture(scope="session")
def standard_sandbox() -> Iterator[SandboxServer]:
    """A small sandbox the four standard suites share (rate limits off: they test shape).

    The suites' configs are written per process under ``STANDARD_CONFIG_DIR``, removed at the end.
    """
    from source_harness import STANDARD_CONFIG_DIR  # after the CDK import above

    with SandboxServer(customers=60, seed=7, enforce_rate_limits=False) as server:
        yield server
    shutil.rmtree(STANDARD_CONFIG_DIR, ignore_errors=True)
