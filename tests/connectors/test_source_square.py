"""airbyte-cdk's standard source suite on the Square manifest, against the loopback sandbox.

The connector folder is `connectors/source_square`; the configs named in its
acceptance-test-config.yml are written per process once the sandbox has a port.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from airbyte_cdk.test import standard_tests
from airbyte_cdk.test.models import ConnectorTestScenario
from source_harness import VENDORS, connector_dir, standard_scenarios, write_standard_configs

from connectors.sandbox import SandboxServer

pytest_plugins = ["airbyte_cdk.test.standard_tests.pytest_hooks"]
VENDOR = "square"


@pytest.fixture(scope="module", autouse=True)
def _standard_configs(standard_sandbox: SandboxServer) -> None:
    write_standard_configs(VENDOR, standard_sandbox.url)


class TestSource(standard_tests.DeclarativeSourceTestSuite):
    """spec, check (good, bad credential, unreachable host), discover, read, bad catalog."""

    @classmethod
    def get_connector_root_dir(cls) -> Path:
        return connector_dir(VENDOR)

    @classmethod
    def get_scenarios(cls) -> list[ConnectorTestScenario]:
        return standard_scenarios(VENDOR, super().get_scenarios())


def test_every_source_carries_the_same_components_py() -> None:
    copies = {v: (connector_dir(v) / "components.py").read_text() for v in VENDORS}
    assert len(set(copies.values())) == 1, "keep connectors/source_*/components.py identical"
