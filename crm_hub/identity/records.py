"""Turn an input frame into `Prepared`: normalised fields as integer codes, in canonical order.

Canonical order is the sort by ``(source, source_id)``. Everything downstream (codes, random
samples, tie-breaks) works in that order, so the result does not depend on the input's row
order; `Prepared.input_position` maps back.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing as mp
import re
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

import jellyfish
import numpy as np
import pandas as pd

from crm_hub.errors import ConfigError
from crm_hub.identity.arrays import distinct
from crm_hub.normalize import (
    nickname_table,
    normalize_addresses,
    normalize_birth_dates,
    normalize_names,
    normalize_phones,
)
from crm_hub.normalize.email import email_match_keys
from crm_hub.normalize.text import spread, unique_apply

__all__ = [
    "INPUT_COLUMNS",
    "Prepared",
    "check_identity",
    "codes_of",
    "either_field_name_frequencies",
    "name_owners",
    "owner_frequencies",
    "prepare",
]

log = logging.getLogger(__name__)

INPUT_COLUMNS = (
    "source", "source_id", "first_name", "last_name", "full_name", "email", "phone",
    "birth_date", "address_line1", "address_line2", "city", "region", "postcode", "country",
)  # fmt: skip
"""Columns `prepare` reads; others are ignored."""

_DATE_DIGITS = re.compile(r"(\d{4})[-/.]?(\d{2})[-/.]?(\d{2})")

NICKNAME_SLOTS = 6
"""How many nickname groups a given name keeps: all of them in the shipped table (``rick`` is
in six; keeping three missed Rick/Patrick)."""


def codes_of(values: np.ndarray | pd.Series) -> np.ndarray:
    """Return int32 codes for values (equal values, equal codes); ``-1`` for missing."""
    codes, _ = pd.factorize(pd.Series(values, dtype=object), use_na_sentinel=True)
    result: np.ndarray = codes.astype(np.int32)
    return result


def owner_frequencies(codes: np.ndarray, owners: np.ndarray) -> tuple[np.ndarray, float]:
    """Term frequencies counted once per owner (a person or cluster) instead of per record.

    A value's frequency among records counts each person's duplicates: an address held by
    one person's four records looks four times as common as it is, which makes agreeing on it
    look weaker than it is. Counting each value once per owner removes that.

    Args:
        codes: value code per record (``-1``: missing).
        owners: owner per record (non-negative; equal for records of one owner).

    Returns:
        Per record, the share of the *other* owners (with a value) holding its value (the
        chance a random other person agrees with it), and the chance two random owners'
        values agree.
    """
    out = np.zeros(len(codes), dtype=np.float64)
    present = np.flatnonzero(codes >= 0)
    if not len(present):
        return out, 1.0
    width = np.int64(codes.max() + 1)
    pairs = distinct(owners[present].astype(np.int64) * width + codes[present])
    counts = np.bincount(pairs % width, minlength=int(width)).astype(np.float64)
    total = float(len(pairs))
    out[present] = np.maximum(counts[codes[present]] - 1, 1) / max(total - 1, 1.0)
    held = counts[counts > 0]
    # The average of the per-record shares (floored alike), so that an average value's
    # adjustment is zero even when nearly every value is unique.
    chance = float((held * np.maximum(held - 1, 1)).sum() / max(total * (total - 1), 1.0))
    return out, min(chance, 1.0)


def name_owners(first_code: np.ndarray, last_code: np.ndarray) -> np.ndarray:
    """Per record, a stand-in for the person: its (given, family) name, else the record.

    Duplicates of one person share their name, so counting a value once per name counts
    people, not records; namesakes collapse, which only makes common values look a little
    rarer. Records lacking either name part stand for themselves.
    """
    n = len(first_code)
    width = np.int64(last_code.max(initial=0) + 1)
    named = (first_code >= 0) & (last_code >= 0)
    full = np.where(named, first_code.astype(np.int64) * width + last_code, -1)
    codes, _ = pd.factorize(full, use_na_sentinel=False)
    result: np.ndarray = np.where(named, codes, n + np.arange(n)).astype(np.int64)
    return result


def either_field_name_frequencies(
    first: np.ndarray, last: np.ndarray, first_tf: np.ndarray, last_tf: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Name term frequencies that count a value as common when it is common in either field.

    Sources write names in either order (``Smith Fatima`` as given name ``smith``), so two
    records of different people can agree on a common family name sitting in the given-name
    field, where it looks rare. The chance such an agreement is a coincidence is the name's
    frequency in the field it really belongs to: each name's frequency is the larger of its
    frequency among given names and among family names.

    Args:
        first: given-name match forms per record (``None``: missing).
        last: family-name match forms per record.
        first_tf: per record, the frequency of its given name among given names.
        last_tf: per record, the frequency of its family name among family names.

    Returns:
        ``(first_tf, last_tf)`` raised to the value's frequency in the other field.
    """
    n = len(first)
    joint = codes_of(np.concatenate([first, last]))
    as_first, as_last = joint[:n], joint[n:]
    width = int(joint.max(initial=-1)) + 1
    if not width:
        return first_tf, last_tf
    tables = []
    for codes, tf in ((as_first, first_tf), (as_last, last_tf)):
        table = np.zeros(width, dtype=np.float64)
        present = codes >= 0
        np.maximum.at(table, codes[present], tf[present])
        tables.append(table)
    raised = []
    for codes, tf, other in ((as_first, first_tf, tables[1]), (as_last, last_tf, tables[0])):
        crossed = np.where(codes >= 0, other[np.maximum(codes, 0)], 0.0)
        raised.append(np.maximum(tf, crossed))
    return raised[0], raised[1]


def value_counts(codes: np.ndarray) -> np.ndarray:
    """Return, per record, how many records hold the same value (0 when missing)."""
    out = np.zeros(len(codes), dtype=np.int32)
    present = codes >= 0
    if present.any():
        out[present] = np.bincount(codes[present])[codes[present]]
    return out


def _several_people(keys: np.ndarray, person: np.ndarray) -> np.ndarray:
    """Per record: does its key value belong to records with different given names?"""
    valid = (keys >= 0) & (person >= 0)
    out = np.zeros(len(keys), dtype=bool)
    if not valid.any():
        return out
    frame = pd.DataFrame({"k": keys[valid], "p": person[valid]})
    distinct = frame.groupby("k")["p"].nunique()
    shared = distinct.index.to_numpy()[distinct.to_numpy() >= 2]
    out[keys >= 0] = np.isin(keys[keys >= 0], shared)
    return out


def shared_contacts(prepared: Prepared) -> dict[str, np.ndarray]:
    """Flag records whose phone, address or surname+postcode several given names share.

    Those are household (or office) contact points: agreeing on them, without a given name to
    tell members apart, does not say which person a record is. Given names count as one person
    when they are nicknames of each other or sound alike (typos).

    Returns:
        Boolean arrays keyed ``phone``, ``address`` and ``surname_postcode``.
    """
    named = np.array([isinstance(v, str) and len(v) > 1 for v in prepared.first], dtype=bool)
    sound_codes, sounds = unique_apply(
        prepared.first, lambda v: jellyfish.metaphone(v) if isinstance(v, str) else None
    )
    sound = codes_of(spread(sound_codes, sounds)).astype(np.int64)
    groups = prepared.first_groups[:, 0].astype(np.int64)
    offset = np.int64(groups.max(initial=0) + 1)
    person = np.where(groups >= 0, groups, sound + offset)
    person = np.where(named & (sound >= 0), person, -1)
    width = np.int64(prepared.postcode_code.max(initial=0) + 1)
    surname_postcode = prepared.last_code.astype(np.int64) * width + prepared.postcode_code
    surname_postcode[(prepared.last_code < 0) | (prepared.postcode_code < 0)] = -1
    # The street line in its town too: records with and without the postcode share it.
    town_width = np.int64(prepared.city_code.max(initial=0) + 1)
    line = codes_of(prepared.address).astype(np.int64)
    line_town = np.where((line >= 0) & (prepared.city_code >= 0),
                         line * town_width + prepared.city_code, -1)  # fmt: skip
    return {
        "phone": _several_people(prepared.phone_code.astype(np.int64), person),
        "address": _several_people(prepared.address_code.astype(np.int64), person)
        | _several_people(line_town, person),
        "surname_postcode": _several_people(surname_postcode, person),
    }


@dataclass
class Prepared:
    """Normalised records in canonical order, as arrays (one entry per record).

    String arrays hold match forms (``None`` when missing); ``*_code`` arrays are int32 codes
    with ``-1`` for missing; ``tf`` holds each record's term frequency per field.
    """

    source: np.ndarray
    source_id: np.ndarray
    input_position: np.ndarray
    first: np.ndarray
    first_code: np.ndarray
    first_groups: np.ndarray
    last: np.ndarray
    last_groups: np.ndarray
    last_code: np.ndarray
    last_phonetic: np.ndarray
    email_code: np.ndarray
    email_local: np.ndarray
    email_local_code: np.ndarray
    email_domain_code: np.ndarray
    phone_code: np.ndarray
    dob_year: np.ndarray
    dob_month: np.ndarray
    dob_day: np.ndarray
    dob_code: np.ndarray
    dob_impossible: np.ndarray
    address: np.ndarray
    address_code: np.ndarray
    number_postcode_code: np.ndarray
    postcode_code: np.ndarray
    city_code: np.ndarray
    postcode: np.ndarray
    city: np.ndarray
    tf: dict[str, np.ndarray] = field(default_factory=dict)
    tf_base: dict[str, float] = field(default_factory=dict)
    counts: dict[str, np.ndarray] = field(default_factory=dict)
    shared: dict[str, np.ndarray] = field(default_factory=dict)
    flags: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of records."""
        return len(self.source)

    def key(self, index: int) -> tuple[str, str]:
        """Return ``(source, source_id)`` of the record at canonical ``index``."""
        return str(self.source[index]), str(self.source_id[index])


def impossible_date_digits(value: object) -> int:
    """``YYYYMMDD`` of a value shaped like a full date that is no date (``1979-02-81``), else -1.

    Such a date is treated as missing, except that the ``birth_date`` comparison counts it as
    one typo of another record's date one slip away (``1979-08-21``): it is most often that.
    """
    found = _DATE_DIGITS.fullmatch(value.strip()) if isinstance(value, str) else None
    if found is None:
        return -1
    year, month, day = (int(g) for g in found.groups())
    try:
        dt.date(year, month, day)
    except ValueError:
        return year * 10000 + month * 100 + day
    return -1  # a real date: parsed, or refused as a placeholder or in the future


def _impossible_dates(raw: np.ndarray, month: np.ndarray) -> np.ndarray:
    """`impossible_date_digits` per record whose birth date did not parse (-1 elsewhere)."""
    unparsed = month <= 0
    codes, items = unique_apply(raw[unparsed], impossible_date_digits)
    out = np.full(len(raw), -1, dtype=np.int32)
    out[unparsed] = np.asarray(items, dtype=np.int32)[codes]
    return out


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.full(len(frame), None, dtype=object)
    values = frame[name]
    out = values.to_numpy(dtype=object, na_value=None)
    result: np.ndarray = out
    return result


def _row(index: int) -> str:
    return f"row {index}"


def check_identity(
    frame: pd.DataFrame, *, describe_row: Callable[[int], str] = _row
) -> tuple[np.ndarray, np.ndarray]:
    """Check and return the ``source`` and ``source_id`` columns as string arrays.

    Args:
        frame: the input records.
        describe_row: names a row in messages (the CLI gives ``file.csv:LINE``).

    Returns:
        ``(source, source_id)``; a missing or empty ``source`` is ``"file"``.

    Raises:
        ConfigError: ``source_id`` is missing, empty, or repeated within a source.
    """
    if "source_id" not in frame.columns:
        raise ConfigError(
            "input has no `source_id` column; add one holding each record's id in its source "
            f"(columns found: {', '.join(map(str, frame.columns)) or 'none'})"
        )
    source_id = frame["source_id"].astype("string").str.strip()
    empty = source_id.isna() | (source_id == "")
    if empty.any():
        row = int(np.flatnonzero(empty.to_numpy())[0])
        raise ConfigError(
            f"{describe_row(row)}: empty `source_id`; every record needs its id in its source"
        )
    if "source" in frame.columns:
        source = frame["source"].astype("string").str.strip().fillna("file")
        source = source.mask(source == "", "file")
    else:
        source = pd.Series("file", index=frame.index, dtype="string")
    duplicated = pd.DataFrame({"s": source, "i": source_id}).duplicated(keep="first")
    if duplicated.any():
        row = int(np.flatnonzero(duplicated.to_numpy())[0])
        first = int(
            np.flatnonzero(
                ((source == source.iloc[row]) & (source_id == source_id.iloc[row])).to_numpy()
            )[0]
        )
        raise ConfigError(
            f"{describe_row(row)}: duplicate source_id {source_id.iloc[row]!r} in source "
            f"{source.iloc[row]!r} (first at {describe_row(first)}); a source_id must be unique "
            "within its source"
        )
    return source.to_numpy(dtype=object), source_id.to_numpy(dtype=object)


def _nickname_groups(first: np.ndarray) -> np.ndarray:
    table = nickname_table()

    def groups(key: object) -> tuple[int, ...]:
        if not isinstance(key, str):
            return ()
        return table.groups(key)[:NICKNAME_SLOTS]

    codes, items = unique_apply(first, groups)
    matrix = np.full((len(items), NICKNAME_SLOTS), -1, dtype=np.int32)
    for row, found in enumerate(items):
        matrix[row, : len(found)] = found
    result: np.ndarray = matrix[codes]
    return result


def _phonetic(last: np.ndarray) -> np.ndarray:
    codes, items = unique_apply(
        last, lambda key: jellyfish.metaphone(key) or None if isinstance(key, str) else None
    )
    return codes_of(spread(codes, items))


_PARALLEL_FROM = 50_000
_FORKED_INPUT: tuple[np.ndarray, np.ndarray, str] | None = None


def _contacts(
    email: np.ndarray, phone: np.ndarray, region: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    return email_match_keys(email), normalize_phones(phone, region)


def _start_contacts(
    email: np.ndarray, phone: np.ndarray, region: str
) -> tuple[ProcessPoolExecutor | None, Future[tuple[pd.DataFrame, pd.DataFrame]] | None]:
    """Normalise e-mails and phones in a second process while names are done here.

    Only for large inputs on a platform that forks (the columns are then shared, not copied).
    """
    if len(email) < _PARALLEL_FROM or "fork" not in mp.get_all_start_methods():
        return None, None
    global _FORKED_INPUT
    _FORKED_INPUT = (email, phone, region)  # inherited by the forked worker, not pickled
    pool = ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("fork"))
    try:
        return pool, pool.submit(_forked_contacts)
    finally:
        _FORKED_INPUT = None


def _forked_contacts() -> tuple[pd.DataFrame, pd.DataFrame]:
    assert _FORKED_INPUT is not None
    return _contacts(*_FORKED_INPUT)


def _joined(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Per record, ``first|second`` as one string; ``None`` when either is missing."""
    missing = (pd.isna(first) | pd.isna(second)).tolist()
    return np.array(
        [None if gap else f"{a}|{b}" for gap, a, b in zip(missing, first, second, strict=True)],
        dtype=object,
    )


def _domain_codes(email_key: np.ndarray) -> np.ndarray:
    """Codes of the domains of e-mail match keys (``-1`` for none), without keeping the
    domain strings: only equality is read."""
    seen: dict[str, int] = {}
    return np.fromiter(
        (seen.setdefault(k.split("@", 1)[1], len(seen)) if isinstance(k, str) else -1
         for k in email_key),
        dtype=np.int32, count=len(email_key),
    )  # fmt: skip


def prepare(frame: pd.DataFrame, *, default_region: str = "GB") -> Prepared:
    """Normalise an input frame into canonical-order arrays.

    Args:
        frame: one row per source record; see `INPUT_COLUMNS` (``source_id`` required).
        default_region: region assumed for phone numbers without a country code.

    Returns:
        The prepared records.

    Raises:
        ConfigError: ``source_id`` is missing or empty, or repeated within a source.
    """
    source, source_id = check_identity(frame)
    sort_key = np.char.add(np.char.add(source.astype(str), "\x1f"), source_id.astype(str))
    order = np.argsort(sort_key, kind="stable")
    source, source_id = source[order], source_id[order]

    def column(name: str) -> np.ndarray:
        return _column(frame, name)[order]

    pool, pending = _start_contacts(column("email"), column("phone"), default_region)
    names = normalize_names(column("first_name"), column("last_name"), column("full_name"))
    first = names["first_key"].to_numpy(dtype=object)
    last = names["last_key"].to_numpy(dtype=object)
    raw_dates = column("birth_date")
    dates = normalize_birth_dates(raw_dates)
    addresses = normalize_addresses(
        column("address_line1"),
        column("address_line2"),
        column("postcode"),
        column("city"),
    )
    emails, phones = pending.result() if pending is not None else _contacts(
        column("email"), column("phone"), default_region
    )  # fmt: skip
    if pool is not None:
        pool.shutdown()
    email_key = emails["match_key"].to_numpy(dtype=object)
    local = np.array([k.split("@", 1)[0] if isinstance(k, str) else None for k in email_key],
                     dtype=object)  # fmt: skip
    line = addresses["line_key"].to_numpy(dtype=object)
    postcode = addresses["postcode_key"].to_numpy(dtype=object)
    city = addresses["city_key"].to_numpy(dtype=object)
    place = np.where(pd.isna(postcode), city, postcode)
    address_full = _joined(line, place)
    number_postcode = _joined(addresses["number"].to_numpy(dtype=object), postcode)
    year = dates["year"].to_numpy(dtype=np.int16)
    month = dates["month"].to_numpy(dtype=np.int8)
    day = dates["day"].to_numpy(dtype=np.int8)
    dob_code = np.where(
        (year > 0) & (month > 0),
        year.astype(np.int32) * 10000 + month.astype(np.int32) * 100 + day.astype(np.int32),
        -1,
    ).astype(np.int32)

    prepared = Prepared(
        source=source,
        source_id=source_id,
        input_position=order.astype(np.int64),
        first=first,
        first_code=codes_of(first),
        first_groups=_nickname_groups(first),
        last=last,
        last_groups=_nickname_groups(last),
        last_code=codes_of(last),
        last_phonetic=_phonetic(last),
        email_code=codes_of(email_key),
        email_local=local,
        email_local_code=codes_of(local),
        email_domain_code=_domain_codes(email_key),
        phone_code=codes_of(phones["e164"].to_numpy(dtype=object)),
        dob_year=year,
        dob_month=month,
        dob_day=day,
        dob_code=dob_code,
        dob_impossible=_impossible_dates(raw_dates, month),
        address=line,
        address_code=codes_of(address_full),
        number_postcode_code=codes_of(number_postcode),
        postcode_code=codes_of(postcode),
        city_code=codes_of(city),
        postcode=postcode,
        city=city,
    )
    owners = name_owners(prepared.first_code, prepared.last_code)
    for name in ("first", "last", "email", "phone", "address"):
        codes = getattr(prepared, f"{name}_code")
        prepared.tf[name], prepared.tf_base[name] = owner_frequencies(codes, owners)
        prepared.counts[name] = value_counts(codes)
    prepared.tf["first"], prepared.tf["last"] = either_field_name_frequencies(
        first, last, prepared.tf["first"], prepared.tf["last"]
    )
    prepared.shared = shared_contacts(prepared)
    prepared.flags = {
        "email": emails["flag"].value_counts().to_dict(),
        "phone": phones["flag"].value_counts().to_dict(),
        "birth_date": dates["flag"].value_counts().to_dict(),
    }
    log.debug("prepared records", extra={"records": prepared.n})
    return prepared
