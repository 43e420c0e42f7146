"""Each target's README documents every config key it accepts, and the state contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from connectors.target_files import TargetFiles
from connectors.target_hubspot import TargetHubSpot
from connectors.target_mailchimp import TargetMailchimp
from connectors.target_sql import TargetSql
from connectors.target_webhook import TargetWebhook

ROOT = Path(__file__).resolve().parents[2]
TARGETS = {
    "mailchimp": TargetMailchimp,
    "hubspot": TargetHubSpot,
    "webhook": TargetWebhook,
    "files": TargetFiles,
    "sql": TargetSql,
}
# singer-sdk's own settings (documented by `--about`), not ours
BUILTIN = {
    "add_record_metadata",
    "load_method",
    "batch_size_rows",
    "validate_records",
    "stream_maps",
    "stream_map_config",
    "faker_config",
    "flattening_enabled",
    "flattening_max_depth",
    "flattening_max_key_length",
    "flattening_separator",
}


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_readme_documents_every_config_key_and_the_contract(name: str) -> None:
    readme = (ROOT / "connectors" / f"target_{name}" / "README.md").read_text()
    schema: dict[str, Any] = TARGETS[name].config_jsonschema
    ours = set(schema["properties"]) - BUILTIN

    missing = sorted(key for key in ours if f"| `{key}` |" not in readme)

    assert missing == []
    assert '"crm_hub_target"' in readme and "rejections_path" in readme
    assert f"connectors/target_{name}/README.md" in (ROOT / "README.md").read_text()
