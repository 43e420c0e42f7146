"""survivorship.yaml: every mistake is reported with file:line, the key and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_hub.config import load_config
from crm_hub.errors import ConfigError
from crm_hub.profile import load_survivorship, survivorship_for
from crm_hub.profile.survivorship import FIELDS, RULES

TEMPLATE = Path(__file__).parents[2] / "crm_hub" / "templates" / "project"
SOURCES = {"pos", "web"}


def problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "survivorship.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_survivorship(path, sources=SOURCES, display="mappings/survivorship.yaml")
    return caught.value.problems


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\nfields:\n  colour: longest\n",
         "mappings/survivorship.yaml:3 fields.colour: unknown field; allowed: full_name"),
        ("version: 1\nfields:\n  email: newest\n",
         "mappings/survivorship.yaml:3 fields.email.rule: unknown rule 'newest'; "
         "allowed: longest, most_frequent, most_recent, source_priority"),
        ("version: 1\nfields:\n  email:\n    rule: source_priority\n    sources: [pos, till]\n",
         "mappings/survivorship.yaml:5 fields.email.sources.1: unknown source 'till'; "
         "sources in hub.yaml: pos, web"),
        ("version: 1\nfields:\n  city: most_recent\n",
         "mappings/survivorship.yaml:3 fields.city: city is chosen together with the rest of "
         "address"),
        ("version: 1\nfields:\n  email: source_priority\n",
         "mappings/survivorship.yaml:3 fields.email: source_priority needs "
         "`sources: [...]`"),
        ("version: 1\nfields:\n  email: {rule: longest, sources: [pos]}\n",
         "mappings/survivorship.yaml:3 fields.email: `sources` is only used by "
         "source_priority"),
        ("version: 1\nfields:\n  email: {rule: longest, fallback: [most_recent]}\n",
         "most_recent would never be used: longest always finds a value"),
        ("version: 1\nfields:\n  email: {rule: longest, order: 2}\n",
         "mappings/survivorship.yaml:3 fields.email.order: unknown key; allowed keys here: "
         "fallback, rule, sources"),
        ("version: 2\n", "mappings/survivorship.yaml:1 version: Input should be 1"),
        ("version: 1\ndefault: {rule: source_priority, sources: [shop]}\n",
         "mappings/survivorship.yaml:2 default.sources.0: unknown source 'shop'"),
    ],
    ids=["unknown-field", "unknown-rule", "unknown-source", "group-member", "priority-without-"
         "sources", "sources-without-priority", "unused-fallback", "unknown-key", "version",
         "default-source"],
)  # fmt: skip
def test_mistakes_name_the_line_the_key_and_the_fix(
    tmp_path: Path, text: str, expected: str
) -> None:
    found = problems(tmp_path, text)
    assert any(expected in problem for problem in found), found


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = "version: 1\nfields:\n  colour: longest\n  phone: {rule: longest, sources: [x]}\n"
    found = problems(tmp_path, text)
    assert [p.split(" ", 2)[:2] for p in found] == [
        ["mappings/survivorship.yaml:3", "fields.colour:"],
        ["mappings/survivorship.yaml:4", "fields.phone.sources.0:"],  # unknown source x
        ["mappings/survivorship.yaml:4", "fields.phone:"],  # sources without source_priority
    ]


def test_yaml_syntax_errors_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "survivorship.yaml"
    path.write_text("version: 1\nfields:\n  email: [oops\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"survivorship.yaml:\d+: YAML syntax error"):
        load_survivorship(path)


def test_unlisted_fields_get_the_default_and_priority_falls_back_to_most_recent(
    tmp_path: Path,
) -> None:
    path = tmp_path / "survivorship.yaml"
    path.write_text("version: 1\ndefault: longest\nfields:\n  email: {rule: source_priority, "
                    "sources: [web]}\n", encoding="utf-8")  # fmt: skip
    loaded = load_survivorship(path, sources=SOURCES)
    assert set(loaded.rules) == set(FIELDS)
    assert loaded.rules["phone"].chain == ("longest",)
    assert loaded.rules["email"].chain == ("source_priority", "most_recent")


def test_without_the_file_every_field_is_most_recent(tmp_path: Path) -> None:
    (tmp_path / "hub.yaml").write_text("sources: {}\n", encoding="utf-8")
    loaded = survivorship_for(load_config(tmp_path / "hub.yaml"))
    assert loaded.display == "built-in defaults"
    assert {rule.chain for rule in loaded.rules.values()} == {("most_recent",)}


def test_the_example_project_file_loads_with_its_hub_yaml() -> None:
    loaded = survivorship_for(load_config(TEMPLATE / "hub.yaml"))
    assert loaded.display == "mappings/survivorship.yaml"
    assert loaded.rules["email"].sources == ["newsletter", "pos_export"]
    text = (TEMPLATE / "mappings" / "survivorship.yaml").read_text(encoding="utf-8")
    for name in [*RULES, *FIELDS]:
        assert name in text, f"the example file does not explain {name}"
