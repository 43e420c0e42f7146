"""hub.yaml ``destinations:``: typed by ``type``, every problem named with file:line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_hub.config import load_config
from crm_hub.config.destinations import FileDestination, MailchimpDestination, SingerDestination
from crm_hub.errors import ConfigError

GOOD = """destinations:
  news:
    type: mailchimp
    api_key: ${MC_KEY}
    list_id: a1b2c3
    segments: [vip]
    fields: [email, first_name]
    mapping: {first_name: FNAME}
  lake:
    type: singer
    command: target-jsonl --verbose
  drop:
    type: file
    path: out/people.csv
    mode: mirror
"""


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "hub.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return caught.value.problems


def test_each_type_becomes_its_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MC_KEY", "secret-key-us21")
    config = load(tmp_path, GOOD)
    news, lake, drop = config.destinations.values()  # type: ignore[attr-defined]
    assert isinstance(news, MailchimpDestination) and news.channel == "email"
    assert news.target_options()["merge_fields"] == {"FNAME": "first_name"}
    assert "secret-key-us21" not in repr(news)
    assert isinstance(lake, SingerDestination) and lake.command == ["target-jsonl", "--verbose"]
    assert isinstance(drop, FileDestination) and drop.file_format() == "csv"
    assert drop.channel == "none" and drop.mode == "mirror"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("destinations:\n  x:\n    type: salesforce\n",
         "hub.yaml:3 destinations.x.type: unknown destination type 'salesforce'; allowed: file, "
         "hubspot, mailchimp, singer, sql, webhook"),
        ("destinations:\n  x:\n    type: mailchimp\n    api_key: k\n",
         "hub.yaml:2 destinations.x.list_id: required key is missing"),
        ("destinations:\n  x:\n    type: file\n    path: a.csv\n    colour: red\n",
         "hub.yaml:5 destinations.x.colour: unknown key; allowed keys here: batch_size, channel, "),
        ("destinations:\n  x:\n    type: file\n    path: a.csv\n    fields: [email, shoe_size]\n",
         "hub.yaml:5 destinations.x.fields: Value error, unknown field(s) shoe_size"),
        ("destinations:\n  x:\n    type: file\n    path: a.csv\n    mode: replace\n",
         "hub.yaml:5 destinations.x.mode: Input should be 'upsert', 'update-only' or 'mirror'"),
        ("destinations:\n  x:\n    type: file\n    path: a.csv\n    mapping: {total_spend: x}\n",
         "hub.yaml:2 destinations.x: Value error, mapping names field(s) not in `fields`"),
        ("destinations:\n  Bad-Name:\n    type: file\n    path: a.csv\n",
         "hub.yaml:2 destinations.Bad-Name"),
    ],
    ids=["unknown-type", "missing-key", "unknown-key", "unknown-field", "bad-mode",
         "mapping-not-sent", "bad-name"],
)  # fmt: skip
def test_problems_name_the_line_and_key(tmp_path: Path, text: str, expected: str) -> None:
    found = problems(tmp_path, text)
    assert any(p.startswith(expected) for p in found), found
