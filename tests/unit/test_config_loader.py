"""hub.yaml: every kind of mistake is reported with file:line, key and the fix; all at once."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from crm_hub.config import FileSourceConfig, load_config
from crm_hub.config.models import SOURCE_TYPES
from crm_hub.errors import ConfigError

GOOD = """\
store: sqlite:///crm-hub.db
sources:
  pos_export:
    type: file
    path: data/customers.csv
    stream: customers
    primary_key: [id]
    cursor_field: updated_at
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hub.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def test_good_config_loads_with_store_relative_to_the_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    source = config.sources["pos_export"]
    assert isinstance(source, FileSourceConfig)
    assert source.primary_key == ["id"]
    assert config.store == f"sqlite:///{tmp_path}/crm-hub.db"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            GOOD + "    colour: red\n",
            "hub.yaml:9 sources.pos_export.colour: unknown key; allowed keys here:",
            id="unknown-key",
        ),
        pytest.param(
            GOOD.replace("primary_key: [id]", "primary_key: {a: 1}"),
            "hub.yaml:7 sources.pos_export.primary_key: Input should be a valid list",
            id="wrong-type",
        ),
        pytest.param(
            GOOD.replace("type: file", "type: fyle"),
            "hub.yaml:4 sources.pos_export.type: unknown source type 'fyle'; allowed: "
            + ", ".join(sorted(SOURCE_TYPES)),
            id="unknown-type",
        ),
        pytest.param(
            GOOD.replace("    path: data/customers.csv\n", ""),
            "hub.yaml:3 sources.pos_export.path: required key is missing",
            id="missing-key",
        ),
        pytest.param(
            GOOD.replace("path: data/customers.csv", "path: ${CRM_HUB_TEST_UNSET_VAR}"),
            "hub.yaml:5 sources.pos_export.path: ${CRM_HUB_TEST_UNSET_VAR} is not set",
            id="missing-env-var",
        ),
        pytest.param(
            GOOD.replace("stream: customers", "stream: Customers!"),
            "hub.yaml:6 sources.pos_export.stream: a name is lower-case letters",
            id="bad-name",
        ),
        pytest.param(
            "store: [unclosed\nsources: {}\n",
            "hub.yaml:2: YAML syntax error",
            id="bad-yaml-syntax",
        ),
        pytest.param(
            GOOD + "schedules:\n  hourly:\n    cron: '0 * * * *'\n    sources: [nope]\n",
            "hub.yaml:12 schedules.hourly.sources.0: no source named 'nope'",
            id="schedule-names-unknown-source",
        ),
    ],
)
def test_each_mistake_names_file_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    problems = problems_of(write(tmp_path, text))
    assert any(p.startswith(expected) for p in problems), problems


def test_every_problem_is_listed_not_only_the_first(tmp_path: Path) -> None:
    text = GOOD.replace("type: file", "type: file\n    colour: red").replace(
        "stream: customers", "stream: 42x"
    )
    text += "  web:\n    type: nope\n"
    problems = problems_of(write(tmp_path, text))
    assert len(problems) == 3
    assert [p.split(" ")[0] for p in problems] == ["hub.yaml:5", "hub.yaml:7", "hub.yaml:11"]


def test_env_default_is_used_when_variable_is_unset(tmp_path: Path) -> None:
    text = GOOD.replace("data/customers.csv", "${CRM_HUB_TEST_UNSET_VAR:-data/x.csv}")
    source = load_config(write(tmp_path, text)).sources["pos_export"]
    assert isinstance(source, FileSourceConfig)
    assert source.path == "data/x.csv"


def test_env_value_never_appears_in_errors_or_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "s3cr3t-token-value"
    monkeypatch.setenv("CRM_HUB_TEST_SECRET", secret)
    text = GOOD.replace("primary_key: [id]", "primary_key: {token: '${CRM_HUB_TEST_SECRET}'}")
    problems = problems_of(write(tmp_path, text))
    assert problems and all(secret not in p for p in problems)
    from crm_hub.logging import redact

    assert redact(f"token={secret}") == "token=***"
    caplog.set_level(logging.DEBUG)
    assert secret not in caplog.text


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="crm-hub init"):
        load_config(tmp_path / "hub.yaml")


def test_bad_config_writes_nothing(tmp_path: Path) -> None:
    load_path = write(tmp_path, GOOD.replace("type: file", "type: fyle"))
    with pytest.raises(ConfigError):
        load_config(load_path)
    assert not (tmp_path / "crm-hub.db").exists()
