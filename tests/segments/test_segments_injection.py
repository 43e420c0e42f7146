"""Hostile segment files: SQL in values and field names is never executed.

Every statement the store runs is captured: an injected value only ever travels as a bound
parameter, an injected field name is refused before any statement runs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest
from sqlalchemy import event, func, select

from crm_hub.config.models import HubConfig
from crm_hub.errors import ConfigError
from crm_hub.segments import evaluate_segments, preview_segment
from crm_hub.segments.spec import LoadedSegments
from crm_hub.store import Store
from crm_hub.store.schema import masters, segment_memberships
from tests.segments.conftest import put

PAYLOAD = "x'); DROP TABLE masters;--"
TODAY = date(2026, 3, 2)


@pytest.fixture
def statements(store: Store) -> Iterator[list[tuple[str, Any]]]:
    """Every (SQL text, parameters) the store's engine executes while the test runs."""
    seen: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, sql: str, params: Any, *_: Any) -> None:
        seen.append((sql, params))

    event.listen(store.engine, "before_cursor_execute", capture)
    yield seen
    event.remove(store.engine, "before_cursor_execute", capture)


def _masters_left(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(masters)).scalar_one())


@pytest.mark.parametrize(
    "where",
    [
        f'{{field: city, eq: "{PAYLOAD}"}}',
        f'{{field: city, in: ["{PAYLOAD}", "a\\"b"]}}',
        f'{{field: allergies, contains: "{PAYLOAD}"}}',
        f'{{not: {{field: email, ne: "{PAYLOAD}"}}}}',
    ],
    ids=["eq", "in", "contains", "not-ne"],
)
def test_sql_in_a_value_is_only_ever_a_bound_parameter(
    store: Store,
    hub: HubConfig,
    segments_file: Callable[[str], LoadedSegments],
    statements: list[tuple[str, Any]],
    where: str,
) -> None:
    put(store, "m_ann", profile={"city": "London"}, allergies="none")
    loaded = segments_file(f"version: 1\nsegments:\n  s:\n    where: {where}\n")
    result = evaluate_segments(store, hub, today=TODAY, definitions=loaded)
    preview_segment(store, hub, "s", today=TODAY, definitions=loaded)
    assert _masters_left(store) == 1
    assert all(PAYLOAD not in sql and "MASTERS;" not in sql.upper() for sql, _ in statements)
    bound = [v for _, params in statements for v in _values(params)]
    assert any(PAYLOAD.lower() == str(v).lower() for v in bound)  # it did travel, as data
    expected = 1 if where.startswith("{not") else 0  # ann's e-mail is unknown: not (ne) holds
    assert result.segments[0].members == expected


def _values(params: Any) -> list[Any]:
    if isinstance(params, dict):
        return list(params.values())
    if isinstance(params, (list, tuple)):
        return [v for p in params for v in _values(p)] if params and isinstance(
            params[0], (list, tuple, dict)
        ) else list(params)  # fmt: skip
    return []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{field: "city; DROP TABLE masters;--", eq: 1}',
         "unknown field 'city; DROP TABLE masters;--'"),
        ('{field: "city) OR 1=1 --", eq: x}', "unknown field 'city) OR 1=1 --'"),
        ('{field: "masters.status", eq: active}', "unknown field 'masters.status'"),
        ('{field: "traits.master_id", is_null: false}', "unknown field 'traits.master_id'"),
    ],
    ids=["drop", "or-true", "other-table", "hidden-column"],
)  # fmt: skip
def test_sql_in_a_field_name_is_refused_before_anything_runs(
    store: Store,
    hub: HubConfig,
    segments_file: Callable[[str], LoadedSegments],
    statements: list[tuple[str, Any]],
    text: str,
    message: str,
) -> None:
    put(store, "m_ann")
    loaded = segments_file(f"version: 1\nsegments:\n  s:\n    where: {text}\n")
    statements.clear()
    with pytest.raises(ConfigError) as caught:
        evaluate_segments(store, hub, today=TODAY, definitions=loaded)
    assert statements == []  # 0 executed
    assert caught.value.problems[0].startswith("segments.yaml:4 segments.s.where.field: ")
    assert message in caught.value.problems[0]
    assert _masters_left(store) == 1


def test_sql_in_per_or_a_segment_name_is_refused(
    store: Store, segments_file: Callable[[str], LoadedSegments]
) -> None:
    with pytest.raises(ConfigError, match=r"segments.yaml:5 segments.s.per: unknown field"):
        from crm_hub.segments import compile_segments

        compile_segments(
            segments_file(
                "version: 1\nsegments:\n  s:\n    where: {field: city, is_null: false}\n"
                '    per: "branch); DROP TABLE masters;--"\n'
            ),
            dialect=store.dialect,
            today=TODAY,
        )
    with pytest.raises(ConfigError, match="a name is lower-case letters"):
        segments_file(
            'version: 1\nsegments:\n  "s\'; DROP TABLE masters;--":\n'
            "    where: {field: city, is_null: false}\n"
        )
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(segment_memberships)).scalar() == 0
