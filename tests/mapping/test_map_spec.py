"""Mapping files: each kind of mistake is reported as file:line key, with what is allowed."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from crm_hub.errors import ConfigError
from crm_hub.mapping.jsonschema import mapping_json_schema
from crm_hub.mapping.spec import load_mapping

TEMPLATES = Path(__file__).parents[2] / "crm_hub" / "templates" / "project" / "mappings"

GOOD = """\
version: 1
streams:
  customers:
    target: customer
    id: id
    fields:
      email: {path: email, transforms: [trim]}
      last_name: name
"""


def problems_of(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "shop.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_mapping(path, "mappings/shop.yaml")
    return caught.value.problems


def test_a_good_mapping_loads_with_the_line_of_every_field(tmp_path: Path) -> None:
    path = tmp_path / "shop.yaml"
    path.write_text(GOOD, encoding="utf-8")
    loaded = load_mapping(path, "mappings/shop.yaml")
    assert loaded.where("streams", "customers", "fields", "last_name") == "mappings/shop.yaml:8"
    assert loaded.spec.streams["customers"].fields["last_name"].path == "name"
    assert len(loaded.digest) == 32


BROKEN = [
    (
        GOOD.replace("    id: id\n", "    id: id\n    colour: red\n"),
        "mappings/shop.yaml:6 streams.customers.colour: unknown key; "
        "allowed keys here: fields, id, lines, target",
    ),
    (
        GOOD.replace("[trim]", "[trim, shout]"),
        "mappings/shop.yaml:7 streams.customers.fields.email.transforms: "
        "Value error, unknown transform 'shout'; allowed: cents_to_decimal",
    ),
    (
        GOOD.replace("last_name: name", "last_name: address..city"),
        "mappings/shop.yaml:8 streams.customers.fields.last_name.path: Value error, "
        "bad path 'address..city': a path is keys joined by dots",
    ),
    (GOOD.replace("version: 1\n", ""), "mappings/shop.yaml:1 version: required key is missing"),
    (GOOD.replace("version: 1", "version: 2"), "mappings/shop.yaml:1 version: Input should be 1"),
    (
        GOOD.replace("last_name: name", "surname: name"),
        "mappings/shop.yaml:8 streams.customers.fields.surname: unknown customer field; "
        "allowed: address_line1",
    ),
    (
        GOOD.replace("target: customer", "target: client"),
        "mappings/shop.yaml:4 streams.customers.target: Input should be 'customer', 'order'",
    ),
    (
        GOOD + "timezone: Mars/Olympus\n",
        "mappings/shop.yaml:9 timezone: Value error, unknown time zone",
    ),
    ("version: 1\nstreams: [\n", "shop.yaml:3: YAML syntax error"),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    BROKEN,
    ids=["unknown-key", "unknown-transform", "bad-path", "missing-version", "wrong-version",
         "unknown-field", "unknown-target", "bad-timezone", "yaml-syntax"],
)  # fmt: skip
def test_broken_mapping_names_file_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "shop.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_mapping(path, "mappings/shop.yaml")
    assert any(p.startswith(expected) for p in caught.value.problems), caught.value.problems


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace("version: 1\n", "").replace("last_name: name", "last_name: a..b")
    assert len(problems_of(tmp_path, text)) == 2


def test_lines_only_for_orders_and_each_must_be_a_list(tmp_path: Path) -> None:
    text = GOOD + "    lines:\n      each: items\n      fields: {product: name, colour: c}\n"
    found = problems_of(tmp_path, text)
    assert any("streams.customers.lines: only orders have lines" in p for p in found)
    assert any("lines.each: must name a list, ending in []" in p for p in found)
    assert any("lines.fields.colour: unknown line field" in p for p in found)


@pytest.mark.parametrize("name", ["pos_export", "pos_orders", "newsletter"])
def test_shipped_mappings_load_and_follow_the_published_schema(name: str) -> None:
    path = TEMPLATES / f"{name}.yaml"
    load_mapping(path)
    document = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    jsonschema.validate(document, mapping_json_schema())


def test_published_schema_file_is_up_to_date() -> None:
    shipped = json.loads((TEMPLATES / "mapping.schema.json").read_text(encoding="utf-8"))
    assert shipped == mapping_json_schema(), "regenerate: crm-hub map --schema > ...schema.json"


def test_schema_rejects_what_the_loader_rejects() -> None:
    document = YAML(typ="safe").load(GOOD.replace("[trim]", "[shout]"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, mapping_json_schema())
