"""The commonest lookups as statements compiled once: search by phone, e-mail or id, one profile.

:func:`~crm_hub.api.lookup.search` and :func:`~crm_hub.api.lookup.load_customer` build their
SQLAlchemy statement per call. Here each statement is built and compiled once per store (the
same selects, filters and order, as :class:`~crm_hub.store.compiled.CompiledSelect`), run
inside the caller's transaction, or alone on a pooled driver connection: one statement needs
no transaction of its own to read one consistent snapshot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, bindparam, true
from sqlalchemy.engine import Dialect

from crm_hub.api.lookup import (
    SearchTerm,
    customer_select,
    profile_select,
    split_customer,
)
from crm_hub.api.policy import Principal
from crm_hub.store.compiled import CompiledSelect, Reader
from crm_hub.store.schema import masters, profiles

__all__ = ["PreparedLookups", "Reader"]

_BRANCH = "crm_branch"
_MASTER_ID = "crm_master_id"
_ROW_LIMIT = "crm_row_limit"


class PreparedLookups:
    """Phone, e-mail and id searches and the profile read, compiled for one store's dialect.

    ``width`` is how many normalised forms a search term may have (e-mail: 3; phone: one per
    region); fewer are padded by repeating the last, which ``IN`` ignores.
    """

    def __init__(self, dialect: Dialect, width: int) -> None:
        self.width = max(width, 3)
        self._statements = {
            (kind, branch): CompiledSelect.of(self._build(kind, branch), dialect)
            for kind in ("id", "email", "phone", "customer")
            for branch in (False, True)
        }

    def search(
        self, conn: Reader, principal: Principal, term: SearchTerm, limit: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """The first page of an id, e-mail or phone search, and whether more rows follow."""
        values = list(term.values[: self.width])
        values += values[-1:] * (self.width - len(values))
        params: dict[str, Any] = {f"crm_v{i}": v for i, v in enumerate(values)}
        params.update({_ROW_LIMIT: limit + 1, _BRANCH: principal.branch})
        rows = self._run(conn, term.kind, principal, params)
        return rows[:limit], len(rows) > limit

    def customer(
        self, conn: Reader, principal: Principal, master_id: str
    ) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        """As :func:`~crm_hub.api.lookup.load_customer`: profile and traits, or None."""
        params = {_MASTER_ID: master_id, _BRANCH: principal.branch}
        rows = self._run(conn, "customer", principal, params)
        return split_customer(rows[0]) if rows else None

    def _run(
        self, conn: Reader, kind: str, principal: Principal, params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        return self._statements[kind, principal.branch is not None].rows(conn, params)

    def _build(self, kind: str, branch: bool) -> Select[Any]:
        visible = [masters.c.status == "active"]
        visible.append(profiles.c.branch == bindparam(_BRANCH) if branch else true())
        if kind == "customer":
            return customer_select(profiles.c.master_id == bindparam(_MASTER_ID), *visible)
        column = {"id": profiles.c.master_id, "email": profiles.c.email, "phone": profiles.c.phone}
        forms: Sequence[Any] = [bindparam(f"crm_v{i}") for i in range(self.width)]
        return (
            profile_select()
            .where(column[kind].in_(forms), *visible)
            .order_by(profiles.c.master_id)
            .limit(bindparam(_ROW_LIMIT))
        )
