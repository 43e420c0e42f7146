"""Online matching: is this one new record (a form entry, a till sign-up) someone we know?

The resolve stage saves its trained model in the store (`save_model`); `OnlineMatcher` loads it
once and, per record, fetches candidates through indexed keys (e-mail match key, E.164 phone,
postcode, birthday + surname), scores them with the same comparisons, rules and vetoes as the
batch engine, and answers with the best master. Nothing is written: the record joins the store
through a source and the next resolve.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, and_, bindparam, func, or_, select
from sqlalchemy.engine import Dialect

from crm_hub.identity import online_scalar, rules
from crm_hub.identity.comparisons import PairContext, comparison, comparison_names
from crm_hub.identity.records import prepare
from crm_hub.identity.scoring import FellegiSunter, compute_levels, match_weights, probability
from crm_hub.identity.settings import MatchSettings
from crm_hub.normalize.address import postcode_key
from crm_hub.normalize.email import normalize_email
from crm_hub.normalize.phone import normalize_phone
from crm_hub.store.compiled import CompiledSelect, Reader
from crm_hub.store.engine import Store
from crm_hub.store.runs import utcnow
from crm_hub.store.schema import identity_state, master_links, source_customers
from crm_hub.store.upsert import upsert

__all__ = [
    "STORE_COLUMNS",
    "MatchAnswer",
    "MatchCandidate",
    "OnlineMatcher",
    "birth_iso",
    "load_model",
    "save_model",
    "score_record",
]

_MODEL = "model"
_QUERY = ("_query", "_query")
STORE_COLUMNS = ("source", "source_id", "first_name", "last_name", "full_name", "email", "phone",
            "birth_year", "birth_month", "birth_day", "address_line1", "address_line2", "city",
            "region", "postcode", "country")  # fmt: skip
"""The source_customers columns matching reads."""


@dataclass(slots=True)
class MatchCandidate:
    """One known record scored against the query."""

    master_id: str
    source: str
    source_id: str
    probability: float
    decision: str
    """``rule:<name>`` or ``score`` (a match), ``veto:<name>``, ``maybe`` or ``no``."""
    levels: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class MatchAnswer:
    """The best master for the query, or None, with every candidate looked at."""

    master_id: str | None
    probability: float
    decision: str
    candidates: list[MatchCandidate]
    milliseconds: float


def save_model(conn: Connection, model: FellegiSunter) -> None:
    """Keep the trained model for online matching (the resolve stage calls this)."""
    value = {"names": list(model.names), "prior": model.prior,
             "m": [a.tolist() for a in model.m], "u": [a.tolist() for a in model.u],
             "u_random": [a.tolist() for a in model.u_random]}  # fmt: skip
    upsert(conn, identity_state, [{"name": _MODEL, "value": value, "updated_at": utcnow()}],
           keys=["name"], update=["value", "updated_at"])  # fmt: skip


def load_model(conn: Connection) -> FellegiSunter | None:
    """The model the last resolve trained, or None before the first resolve."""
    value = conn.execute(
        select(identity_state.c.value).where(identity_state.c.name == _MODEL)
    ).scalar_one_or_none()
    if value is None or not _levels_match(value["names"], value["m"]):
        return None
    arrays = {key: [np.asarray(a, dtype=np.float64) for a in value[key]]
              for key in ("m", "u", "u_random")}  # fmt: skip
    return FellegiSunter(tuple(value["names"]), arrays["m"], arrays["u"], arrays["u_random"],
                         float(value["prior"]))  # fmt: skip


def _levels_match(names: Sequence[str], m: Sequence[Sequence[float]]) -> bool:
    """Whether a saved model has as many levels per comparison as the registered ones: one
    saved before a comparison gained a level cannot score it (the next resolve retrains)."""
    known = set(comparison_names(defaults_only=False))
    return all(name in known and len(levels) == comparison(name).n_levels
               for name, levels in zip(names, m, strict=True))  # fmt: skip


class OnlineMatcher:
    """Match single records against the store's people with the last resolve's model.

    Example:
        >>> matcher = OnlineMatcher(store)  # doctest: +SKIP
        >>> matcher.match({"email": "Anna.Berg@gmail.com", "first_name": "Anna"})  # doctest: +SKIP
    """

    def __init__(self, store: Store, settings: MatchSettings | None = None, limit: int = 200):
        self.store = store
        self.settings = settings or MatchSettings()
        self.limit = limit
        self._model: FellegiSunter | None = None

    def reload(self) -> None:
        """Forget the cached model (after a resolve retrained it)."""
        self._model = None

    def _candidates(self, record: dict[str, Any], reader: Reader | None) -> list[dict[str, Any]]:
        """Known records sharing a blocking key with the query, with their master. The one
        statement reads one snapshot alone: on ``reader`` when given (a connection kept outside
        any transaction), else on SQLite on a pooled driver connection outside any
        transaction, which costs less than SQLAlchemy's begin and commit."""
        params = _candidate_params(record, self.settings.default_region, self.limit)
        if params is None:
            return []
        statement = _candidate_select(params[0], self.store.engine.dialect)
        if reader is not None:
            return statement.rows(reader, params[1])
        if self.store.dialect != "sqlite":
            with self.store.read() as conn:
                return statement.rows(conn, params[1])
        raw = self.store.engine.raw_connection()
        try:
            return statement.rows(raw, params[1])
        finally:
            raw.close()

    def match(self, record: dict[str, Any], reader: Reader | None = None) -> MatchAnswer:
        """Score one record (hub field names: first_name, email, phone, birth_date, postcode...);
        its candidates are read on ``reader`` when given."""
        started = time.perf_counter()
        if self._model is None:
            with self.store.read() as conn:
                self._model = load_model(conn)
        rows = self._candidates(record, reader)
        model = self._model
        if model is None or not rows:
            return MatchAnswer(None, 0.0, "no", [], _ms(started))
        candidates = score_record(model, record, rows, self.settings)
        matches = [c for c in candidates if c.decision.startswith(("rule:", "score"))]
        best = max(matches or candidates, key=lambda c: (c.probability, c.master_id))
        if not matches:
            return MatchAnswer(None, best.probability, "no", candidates, _ms(started))
        answer = best.master_id, best.probability, best.decision
        return MatchAnswer(*answer, candidates, _ms(started))


def score_record(
    model: FellegiSunter,
    record: dict[str, Any],
    rows: Sequence[Mapping[str, Any]],
    settings: MatchSettings,
    *,
    scalar: bool = True,
) -> list[MatchCandidate]:
    """Score ``record`` against its candidate ``rows``, best first.

    The shipped comparisons and rules are scored pair by pair (`online_scalar`); ``scalar=False``
    (or a model or registry with others) builds frames and runs the batch path, the reference
    the scalar path must agree with.
    """
    if scalar and online_scalar.supports(tuple(model.names)):
        return _score_scalar(model, record, rows, settings)
    return _score_frames(model, record, rows, settings)


def _decision(
    veto: str | None, rule: str | None, probability: float, settings: MatchSettings
) -> str:
    if veto is not None:
        return f"veto:{veto}"
    if rule is not None:
        return f"rule:{rule}"
    if probability >= settings.threshold:
        return "score"
    return "maybe" if probability >= settings.review_threshold else "no"


def _score_scalar(
    model: FellegiSunter,
    record: dict[str, Any],
    rows: Sequence[Mapping[str, Any]],
    settings: MatchSettings,
) -> list[MatchCandidate]:
    region = settings.default_region
    query = online_scalar.person(record, region)
    people = [online_scalar.person(_row(r), region) for r in rows]
    out = [
        MatchCandidate(
            row["master_id"],
            row["source"],
            row["source_id"],
            round(found.probability, 6),
            _decision(found.veto, found.rule, found.probability, settings),
            found.levels,
        )  # fmt: skip
        for row, found in zip(rows, online_scalar.score_pairs(model, query, people), strict=True)
    ]
    return sorted(out, key=lambda c: (-c.probability, c.source, c.source_id))


def _score_frames(
    model: FellegiSunter,
    record: dict[str, Any],
    rows: Sequence[Mapping[str, Any]],
    settings: MatchSettings,
) -> list[MatchCandidate]:
    query = {
        name: record.get(name) for name in STORE_COLUMNS if name not in ("source", "source_id")
    }
    query["source"], query["source_id"] = _QUERY
    query["birth_date"] = record.get("birth_date")
    frame = pd.DataFrame([query, *(_row(r) for r in rows)])
    prepared = prepare(frame, default_region=settings.default_region)
    me = next(i for i in range(prepared.n) if prepared.key(i) == _QUERY)
    others = np.array([i for i in range(prepared.n) if i != me], dtype=np.int32)
    ctx = PairContext(prepared, np.full(len(others), me, dtype=np.int32), others, settings)
    names = tuple(model.names) or tuple(comparison_names())
    levels = compute_levels(ctx, names)
    prob = probability(match_weights(model, levels))
    level_map = {name: levels[:, c] for c, name in enumerate(names)}
    rule_names = tuple(rules.rule_names())
    veto_names = rules.active_vetoes(rules.veto_names(),
                                     dict(zip(model.names, model.m, strict=True)))  # fmt: skip
    fired = rules.apply(level_map, rule_names, ctx, vetoes=False)
    vetoed = rules.apply(level_map, veto_names, ctx, vetoes=True)
    masters = {(r["source"], r["source_id"]): r["master_id"] for r in rows}
    out = []
    for k, index in enumerate(others):
        key = prepared.key(int(index))
        veto = veto_names[vetoed[k]] if vetoed[k] >= 0 else None
        rule = rule_names[fired[k]] if fired[k] >= 0 else None
        decision = _decision(veto, rule, float(prob[k]), settings)
        levels_of = {n: int(level_map[n][k]) for n in names}
        score = round(float(prob[k]), 6)
        out.append(MatchCandidate(masters[key], key[0], key[1], score, decision, levels_of))
    return sorted(out, key=lambda c: (-c.probability, c.source, c.source_id))


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)


def _row(row: Mapping[str, Any]) -> dict[str, Any]:
    values = {name: row[name] for name in STORE_COLUMNS}
    values["birth_date"] = birth_iso(
        values.pop("birth_year"), values.pop("birth_month"), values.pop("birth_day")
    )
    return values


def birth_iso(year: Any, month: Any, day: Any) -> str | None:
    """``YYYY-MM-DD``, ``--MM-DD`` without a year, None without month and day."""
    if pd.isna(month) or pd.isna(day):
        return None
    if pd.isna(year):
        return f"--{int(month):02d}-{int(day):02d}"
    return f"{int(year):04d}-{int(month):02d}-{int(day):02d}"


def _candidate_params(
    record: dict[str, Any], region: str, limit: int
) -> tuple[tuple[str, ...], dict[str, Any]] | None:
    """The blocking keys the record has, and the candidate statement's parameters (None: no
    key, so no candidate)."""
    params: dict[str, Any] = {"crm_limit": limit}
    email = normalize_email(record.get("email")).match_key if record.get("email") else None
    if email:
        params["crm_email"] = email
    phone = normalize_phone(record.get("phone"), region).e164 if record.get("phone") else None
    if phone:
        params["crm_phone"] = phone
    postcode = postcode_key(record.get("postcode")) if record.get("postcode") else None
    if postcode:
        params["crm_postcode"] = postcode
    birth = _month_day(record.get("birth_date"))
    surname = (record.get("last_name") or "").strip().lower()
    if birth and surname:
        params.update(crm_month=birth[0], crm_day=birth[1], crm_surname=surname)
    keys = tuple(key for key in ("email", "phone", "postcode", "surname") if f"crm_{key}" in params)
    return (keys, params) if keys else None


@lru_cache(maxsize=64)
def _candidate_select(keys: tuple[str, ...], dialect: Dialect) -> CompiledSelect:
    """The candidates statement for one set of keys, built and compiled once per dialect."""
    c = source_customers.c
    conditions = {
        "email": lambda: c.email_match_key == bindparam("crm_email"),
        "phone": lambda: c.phone == bindparam("crm_phone"),
        "postcode": lambda: c.postcode_key == bindparam("crm_postcode"),
        "surname": lambda: and_(
            c.birth_month == bindparam("crm_month"),
            c.birth_day == bindparam("crm_day"),
            func.lower(c.last_name) == bindparam("crm_surname"),
        ),  # fmt: skip
    }
    statement = (
        select(*(c[name] for name in STORE_COLUMNS), master_links.c.master_id)
        .join(
            master_links,
            and_(master_links.c.source == c.source, master_links.c.source_id == c.source_id),
        )  # fmt: skip
        .where(c.deleted.is_(False), or_(*(conditions[key]() for key in keys)))
        .limit(bindparam("crm_limit"))
    )
    return CompiledSelect.of(statement, dialect)


def _month_day(value: Any) -> tuple[int, int] | None:
    text = str(value or "")
    parts = text.lstrip("-").split("-")
    try:
        return (int(parts[-2]), int(parts[-1])) if len(parts) >= 2 else None
    except ValueError:
        return None
