from __future__ import annotations

import csv
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crm_hub.cli import app

runner = CliRunner()

HEADER = "source,source_id,first_name,last_name,email,phone,birth_date,postcode,notes\n"


def write(tmp_path: Path, text: str | bytes, name: str = "in.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_match_writes_one_row_per_input_row(tmp_path: Path) -> None:
    source = write(tmp_path, HEADER
                   + "pos,1,Bob,Smith,bob.smith@gmail.com,07911 123456,,SW1A 1AA,x\n"
                   + "news,a,Robert,Smith,BobSmith@googlemail.com,,,,\n"
                   + "pos,2,Alice,Jones,,020 7946 0018,1980-01-02,,\n")  # fmt: skip
    out, review = tmp_path / "links.csv", tmp_path / "review.csv"
    result = runner.invoke(app, ["match", str(source), "--out", str(out), "--review", str(review)])
    assert result.exit_code == 0, result.output
    with out.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[:3] == ["source", "source_id", "master_id"]
    assert [(r["source"], r["source_id"]) for r in rows] == [("pos", "1"), ("news", "a"),
                                                              ("pos", "2")]  # fmt: skip
    assert rows[0]["master_id"] == rows[1]["master_id"] != rows[2]["master_id"]
    assert review.exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("id,first_name\n1,Bob\n", "in.csv:1: required column `source_id`"),
        ("source_id,first_name\n1,Bob\n2,Ann\n1,Rob\n", "in.csv:4: duplicate source_id '1'"),
        (b"source_id,first_name\n1,Bob\n2,Ro\xffb\n", "in.csv:3:5: not valid UTF-8"),
        ("source_id,first_name\n1,Bob\n,Ann\n", "in.csv:3: empty `source_id`"),
    ],
    ids=["missing-source-id", "duplicate", "bad-utf8", "empty-id"],
)
def test_bad_input_exits_2_naming_file_and_line(
    tmp_path: Path, content: str | bytes, expected: str
) -> None:
    source = write(tmp_path, content)
    result = runner.invoke(app, ["match", str(source), "--out", str(tmp_path / "o.csv")])
    assert result.exit_code == 2
    assert expected in " ".join(result.output.split())


def test_same_source_id_in_two_sources_is_fine(tmp_path: Path) -> None:
    source = write(tmp_path, "source,source_id\npos,1\nnews,1\n")
    result = runner.invoke(app, ["match", str(source), "--out", str(tmp_path / "o.csv")])
    assert result.exit_code == 0, result.output


def test_missing_file_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["match", str(tmp_path / "nope.csv"), "--out", "o.csv"])
    assert result.exit_code == 2
