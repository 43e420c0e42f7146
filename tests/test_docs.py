"""Docs are part of the feature: every command, setting, hub.yaml key and reject reason is in
the README, and every command has --help text."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main

from crm_hub.cli import app
from crm_hub.config.models import FileSourceConfig, SourceConfig
from crm_hub.settings import Settings
from crm_hub.sync.files import REASON_CODES

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
ROOT = Path(__file__).parents[1]


def commands() -> list[tuple[str, Any]]:
    root = typer.main.get_command(app)
    found = []
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        if hasattr(command, "commands"):
            found += [(f"{name} {sub}", c) for sub, c in command.commands.items()]
        else:
            found.append((name, command))
    return found


@pytest.mark.parametrize(
    ("name", "command"), commands(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_command_is_documented_and_has_help(name: str, command: Any) -> None:
    assert f"crm-hub {name}" in README, f"README does not mention `crm-hub {name}`"
    assert command.help and len(command.help) > 20, f"`crm-hub {name}` needs --help text"


def test_every_setting_is_in_the_readme_with_its_description() -> None:
    for group, field in Settings.model_fields.items():
        annotation = field.annotation
        subfields = getattr(annotation, "model_fields", None)
        if subfields:
            for sub, subfield in subfields.items():
                variable = f"CRM_HUB_{group.upper()}__{sub.upper()}"
                assert variable in README, variable
                assert subfield.description and subfield.description in README, variable
        else:
            assert f"CRM_HUB_{group.upper()}" in README
            assert field.description, group


def test_every_source_key_is_in_the_readme() -> None:
    for model in (SourceConfig, FileSourceConfig):
        for key, field in model.model_fields.items():
            assert re.search(rf"\b{key}\b", README), f"hub.yaml key {key} is undocumented"
            assert field.description, f"{model.__name__}.{key} needs a description"


def test_every_reject_reason_is_in_the_readme() -> None:
    source = (ROOT / "crm_hub/sync/files.py").read_text(encoding="utf-8")
    used = set(re.findall(r'"(\w+)",\s*(?:f?"|why\b)', source)) | {"bad_encoding", "invalid_json"}
    assert used <= set(REASON_CODES), used - set(REASON_CODES)
    for code in REASON_CODES:
        assert f"`{code}`" in README, code
