"""The README's segment guide names every field and operator a segment can use."""

from __future__ import annotations

import re
from pathlib import Path

from crm_hub.segments import FIELDS
from crm_hub.segments.spec import OPERATORS

README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
GUIDE = README.split("## For marketing: segments", 1)[-1].split("\n## ", 1)[0]


def test_every_field_is_in_the_guide() -> None:
    missing = [
        name
        for name, info in FIELDS.items()
        if "." not in name and info.kind != "json" and f"`{name}`" not in GUIDE
    ]
    assert missing == []


def test_every_operator_is_in_the_guide() -> None:
    assert [op for op in OPERATORS if not re.search(rf"`{op}`", GUIDE)] == []
