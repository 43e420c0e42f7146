"""docs/mapping.md documents every transform, canonical field and map reason code."""

from __future__ import annotations

import re
from pathlib import Path

from crm_hub.mapping.fields import FIELDS, LINE_FIELDS
from crm_hub.mapping.transforms import TRANSFORMS

ROOT = Path(__file__).parents[2]
DOC = (ROOT / "docs" / "mapping.md").read_text(encoding="utf-8")


def test_every_transform_is_documented() -> None:
    for name, transform in TRANSFORMS.items():
        assert f"`{name}`" in DOC, name
        assert transform.doc, f"{name} needs a docstring"


def test_every_reason_code_is_documented() -> None:
    source = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "crm_hub/mapping").glob("*.py"))
    codes = set(re.findall(r'reason_code="(\w+)"', source))
    codes |= set(re.findall(r'_bad\(\s*\w+,\s*"[^"]*",\s*"(\w+)"\s*\)', source))
    assert {"not_a_decimal", "unmapped_stream", "missing_id"} <= codes
    for code in codes:
        assert f"`{code}`" in DOC, code


def test_every_canonical_field_is_documented() -> None:
    for name in {f for fields in FIELDS.values() for f in fields} | set(LINE_FIELDS):
        assert f"`{name}`" in DOC, name
