"""One master's golden row from its member source customers: pure Python, no I/O.

Per golden field, the field's rule chain (survivorship.py) picks one record among those that
have a value. Then the no-clobber guard: when the record the current golden value came from is
still a member but now has no value, the current value stays, unless the new winner is more
recent (or comes from a source that ``source_priority`` prefers). Every value written records
``{source, source_id, rule, at}`` in ``provenance``, per profile column. ``emails``/``phones``
list every distinct usable value (the golden one first); consents are merged per channel, the
most recent decision winning (a withdrawal wins a tie).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from crm_hub.profile.survivorship import FIELDS, RULES, FieldRule, LoadedSurvivorship, RuleFunction

__all__ = [
    "CONTENT_COLUMNS",
    "MEMBER_COLUMNS",
    "Merger",
]

# Columns of source_customers read per member, in this order (``Member`` is a row of them).
MEMBER_COLUMNS = (
    "source", "source_id", "full_name", "first_name", "last_name", "email", "email_flag",
    "emails", "phone", "phone_flag", "phones", "birth_year", "birth_month", "birth_day",
    "address_line1", "address_line2", "city", "region", "postcode", "country", "language",
    "branch", "consents", "created_at", "updated_at", "mapped_at",
)  # fmt: skip
_AT = {name: i for i, name in enumerate(MEMBER_COLUMNS)}
_SOURCE, _SOURCE_ID = _AT["source"], _AT["source_id"]
_EMAILS, _PHONES, _CONSENTS = _AT["emails"], _AT["phones"], _AT["consents"]
_CREATED, _UPDATED, _MAPPED = _AT["created_at"], _AT["updated_at"], _AT["mapped_at"]
_UNUSABLE = frozenset({"invalid", "junk"})
_OLDEST = datetime(1, 1, 1, tzinfo=UTC)

Member = Sequence[Any]

# The profile columns a run compares before writing (all but the key and the bookkeeping).
CONTENT_COLUMNS = (
    *(col for cols in FIELDS.values() for col in cols),
    "emails", "phones", "consents", "provenance",
)  # fmt: skip


def _recency(member: Member) -> tuple[datetime, datetime, str, str]:
    return (
        member[_UPDATED] or _OLDEST,
        member[_MAPPED] or _OLDEST,
        member[_SOURCE],
        member[_SOURCE_ID],
    )


def _when(member: Member) -> datetime:
    """When a member record's values date from: updated_at, else created_at, else mapped_at."""
    moment: datetime = member[_UPDATED] or member[_CREATED] or member[_MAPPED]
    return moment


def _getter(name: str) -> Callable[[Member], Any]:
    """The field's value in a member row (a tuple for a group; None when it has none)."""
    columns = FIELDS[name]
    if name in ("email", "phone"):
        index, flag = _AT[name], _AT[f"{name}_flag"]
        return lambda m: m[index] if m[flag] not in _UNUSABLE else None
    if len(columns) == 1:
        index = _AT[columns[0]]
        return lambda m: m[index]
    pick, size = itemgetter(*(_AT[c] for c in columns)), len(columns)

    def group(m: Member) -> Any:
        value = pick(m)
        return value if value.count(None) < size else None

    return group


@dataclass(frozen=True, slots=True)
class _Plan:
    name: str
    columns: tuple[str, ...]
    get: Callable[[Member], Any]
    chain: tuple[tuple[str, RuleFunction], ...]
    rule: FieldRule


class Merger:
    """Computes golden rows with the rules of one survivorship file."""

    def __init__(self, survivorship: LoadedSurvivorship) -> None:
        self.plans = [
            _Plan(
                name,
                FIELDS[name],
                _getter(name),
                tuple((r, RULES[r].function) for r in rule.chain),
                rule,
            )
            for name, rule in survivorship.rules.items()
        ]

    def golden(
        self, master_id: str, members: list[Member], previous: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The profile row (content columns and ``master_id``) of one master.

        Args:
            master_id: the master.
            members: its live source customers (rows of ``MEMBER_COLUMNS``), at least one.
            previous: its current profile row, if any (for the no-clobber guard).
        """
        if len(members) > 1:
            members = sorted(members, key=_recency, reverse=True)
        row: dict[str, Any] = {"master_id": master_id}
        provenance: dict[str, Any] = {}
        entries: dict[tuple[int, str], dict[str, Any]] = {}
        times: dict[int, str] = {}
        old_prov = (previous or {}).get("provenance") or {}
        for plan in self.plans:
            get = plan.get
            values: list[Any] = []
            sources: list[str] = []
            owners: list[int] = []
            for index, member in enumerate(members):
                value = get(member)
                if value is not None:
                    values.append(value)
                    sources.append(member[_SOURCE])
                    owners.append(index)
            winner, rule_name = None, ""
            for name, function in plan.chain:
                winner = function(values, sources, plan.rule)
                if winner is not None:
                    rule_name = name
                    break
            if old_prov and self._keep(plan, members, winner, owners, old_prov):
                assert previous is not None
                for col in plan.columns:
                    row[col] = previous.get(col)
                    if col in old_prov:
                        provenance[col] = old_prov[col]
                continue
            if winner is None:
                for col in plan.columns:
                    row[col] = None
                continue
            owner = owners[winner]
            entry = entries.get((owner, rule_name))
            if entry is None:  # shared by the fields one record wins by one rule
                member = members[owner]
                at = times.get(owner)
                if at is None:
                    at = times[owner] = _when(member).isoformat()
                entry = {"source": member[_SOURCE], "source_id": member[_SOURCE_ID],
                         "rule": rule_name, "at": at}  # fmt: skip
                entries[owner, rule_name] = entry
            value = values[winner]
            if len(plan.columns) == 1:
                row[plan.columns[0]] = value
                provenance[plan.columns[0]] = entry
            else:
                for col, part in zip(plan.columns, value, strict=True):
                    row[col] = part
                    if part is not None:
                        provenance[col] = entry
        row["emails"] = _distinct(row["email"], members, _EMAILS, "email", _AT["email"])
        row["phones"] = _distinct(row["phone"], members, _PHONES, "e164", _AT["phone"])
        row["consents"] = _consents(members)
        row["provenance"] = provenance or None
        return row

    @staticmethod
    def _keep(
        plan: _Plan,
        members: list[Member],
        winner: int | None,
        owners: list[int],
        old_prov: dict[str, Any],
    ) -> bool:
        """Whether the current value stays: its record is still a member, has lost the value,
        and the new winner is nothing, or older (and not from a source priority prefers)."""
        old = next((old_prov[c] for c in plan.columns if c in old_prov), None)
        if old is None:
            return False
        holder = next(
            (m for m in members
             if m[_SOURCE] == old["source"] and m[_SOURCE_ID] == old["source_id"]),
            None,
        )  # fmt: skip
        if holder is None or plan.get(holder) is not None:
            return False
        if winner is None:
            return True
        new = members[owners[winner]]
        if _when(new) > datetime.fromisoformat(old["at"]):
            return False
        preferred = plan.rule.sources or []
        if preferred and "source_priority" in {name for name, _ in plan.chain}:
            rank = {source: i for i, source in enumerate(preferred)}
            if rank.get(new[_SOURCE], len(rank)) < rank.get(old["source"], len(rank)):
                return False
        return True


def _distinct(
    golden: Any, members: list[Member], list_index: int, key: str, single_index: int
) -> list[Any] | None:
    """Every usable value of a member list column (unflagged), the golden one first."""
    seen: dict[Any, None] = {}
    if golden is not None:
        seen[golden] = None
    for member in members:
        entries = member[list_index]
        if entries:
            for entry in entries:
                value = entry.get(key)
                if value is not None and entry.get("flag") is None:
                    seen[value] = None
        elif member[single_index] is not None and member[single_index + 1] is None:
            seen[member[single_index]] = None  # no list: the primary (its flag follows it)
    return list(seen) or None


def _consents(members: list[Member]) -> dict[str, Any] | None:
    """Per channel, the most recent decision (``at``, else the record's time); ties: withdrawn."""
    best: dict[str, tuple[datetime, bool, dict[str, Any]]] = {}
    for member in members:
        consents = member[_CONSENTS]
        if not consents:
            continue
        for channel, entry in consents.items():
            granted = entry.get("granted") if isinstance(entry, dict) else None
            if not isinstance(granted, bool):
                continue
            moment = _parse(entry.get("at")) or _when(member)
            rank = (moment, not granted)
            current = best.get(channel)
            if current is not None and (current[0], current[1]) >= rank:
                continue
            best[channel] = (moment, not granted, {
                "granted": granted, "at": moment.isoformat(),
                "source": member[_SOURCE], "source_id": member[_SOURCE_ID],
            })  # fmt: skip
    return {channel: decision[2] for channel, decision in sorted(best.items())} or None


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
