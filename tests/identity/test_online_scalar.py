"""The scalar online matcher against the frame path: the same levels, scores and decisions.

``score_record(..., scalar=False)`` runs `prepare` and the batch comparisons over frames (the
reference); the default path scores pair by pair. Records are drawn from small pools built to
hit every branch: nicknames, initials, swapped names, typos, households sharing a phone or
address, shared mailboxes, partial, swapped and impossible birth dates, postcode and address
variants (lines in another order, a slip in both postcode and town).
"""

from __future__ import annotations

import random
from collections import namedtuple
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_hub.identity import online_scalar
from crm_hub.identity.comparisons import comparison, comparison_names
from crm_hub.identity.online import STORE_COLUMNS, score_record
from crm_hub.identity.scoring import FellegiSunter
from crm_hub.identity.settings import MatchSettings

Row = namedtuple("Row", [*STORE_COLUMNS, "master_id"])  # type: ignore[misc]  # noqa: PYI024

FIRST = [None, "", "John", "Jon", "J", "J.", "Robert", "Bob", "B", "Rebecca", "Becky", "Rick",
         "Patrick", "Charles", "Cahrles", "Chuck", "Liz", "Elizabeth", "Ann", "Anne", "Smith",
         "Smyth", "Mary-Ann", "Zoë", "Mr", "test", "Lee", "Jonathan", "Jonathon", "Katherine",
         "Catherine"]  # fmt: skip
LAST = [None, "", "Smith", "Smyth", "Smith Jr", "Lee", "Thompson", "Tomson", "O'Brien", "John",
        "Robert", "van der Berg", "Patel"]  # fmt: skip
FULL = [None, None, "Dr Mary Smith", "Smith, John", "John Smith", "Mrs. Ann Lee-Patel PhD"]
EMAIL = [None, "", "js@gmail.com", "J.S@googlemail.com", "js+shop@gmail.com", "ann@lee.org",
         "ANN@Lee.org ", "test@example.com", "bad@", "robert@smith.co.uk", "rboert@smith.co.uk",
         "roberrt@smith.co.uk", "robert@smiht.co.uk", "tobert@smith.co.uk"]  # fmt: skip
PHONE = [None, "", "07911 123456", "+44 7911 123456", "447911123456", "020 7946 0018",
         "+44 (0)20 7946 0018", "0000000000", "07911 123456 ext 2", "12345"]  # fmt: skip
BIRTH = [None, (1980, 1, 2), (1980, 2, 1), (1980, 1, 3), (1981, 1, 2), (1908, 1, 2),
         (None, 1, 2), (None, 1, 3), (1990, 5, 5), (2090, 1, 1), (1980, 1, 9),
         (None, 1, 9)]  # fmt: skip
QUERY_BIRTH = [None, "1980-01-02", "1980-02-01", "--01-02", "1980/01/03", "1990-05-05",
               "1985-02-30", "19800102", "1980-01-10", "--01-10", "1980-01-32",
               "1980-10-32"]  # fmt: skip
LINE = [None, "", "12 High Street", "12, HIGH ST.", "12 Hihg St", "14 High Street", "Flat 2",
        "High Street", "Flat 2, 12 High Street"]  # fmt: skip
POSTCODE = [None, "", "SW1A 1AA", "sw1a1aa", "SW1A 1AB", "M1 1AE", "SW1A 1AAA"]
CITY = [None, "London", "LONDON", "Leeds", "Londno"]


def _name(rng: random.Random, pool: list[str | None]) -> str | None:
    """A pool name, or a made-up one: short words of few letters meet at every similarity."""
    if rng.random() < 0.6:
        return rng.choice(pool)
    return "".join(rng.choice("aeilnrst") for _ in range(rng.randint(1, 7))).title()


def _line(rng: random.Random) -> str | None:
    if rng.random() < 0.6:
        return rng.choice(LINE)
    street = "".join(rng.choice("aehilnst") for _ in range(rng.randint(3, 8)))
    return f"{rng.choice([12, 14])} {street} {rng.choice(['Street', 'St', 'Road'])}"


def _model(first_m0: float, birth_m0: float, prior: float) -> FellegiSunter:
    """The comparisons' priors, with the share of true matches at level 0 of the two vetoes'
    comparisons set (above 0.06 / 0.05 the vetoes are dropped)."""
    names = comparison_names()
    m = [np.asarray(comparison(n).prior_m, dtype=np.float64) for n in names]
    u = [np.asarray(comparison(n).prior_u, dtype=np.float64) for n in names]
    for name, share in (("first_name", first_m0), ("birth_date", birth_m0)):
        column = m[names.index(name)]
        column[0] = share
        column /= column.sum()
    return FellegiSunter(names, m, u, [x.copy() for x in u], prior)


MODELS = {
    "vetoes_on": _model(0.02, 0.02, 0.001),
    "vetoes_off": _model(0.2, 0.2, 0.05),
}


def _query(rng: random.Random) -> dict[str, Any]:
    record = {
        "first_name": _name(rng, FIRST),
        "last_name": _name(rng, LAST),
        "full_name": rng.choice(FULL),
        "email": rng.choice(EMAIL),
        "phone": rng.choice(PHONE),
        "birth_date": rng.choice(QUERY_BIRTH),
        "address_line1": _line(rng),
        "address_line2": rng.choice([None, None, "Flat 2"]),
        "postcode": rng.choice(POSTCODE),
        "city": rng.choice(CITY),
    }
    return {key: value for key, value in record.items() if value is not None}


def _row(rng: random.Random, index: int) -> Row:
    year, month, day = rng.choice(BIRTH) or (None, None, None)
    values = {name: None for name in STORE_COLUMNS}
    values.update(
        source=rng.choice(["pos", "news"]), source_id=f"r{index}",
        first_name=_name(rng, FIRST), last_name=_name(rng, LAST), full_name=rng.choice(FULL),
        email=rng.choice(EMAIL), phone=rng.choice(PHONE), birth_year=year, birth_month=month,
        birth_day=day, address_line1=_line(rng), postcode=rng.choice(POSTCODE),
        city=rng.choice(CITY),
    )  # fmt: skip
    return Row(**values, master_id=f"m_{index % 5}")


def _dicts(rows: list[Row]) -> list[dict[str, Any]]:
    """Rows as the candidates statement returns them."""
    return [row._asdict() for row in rows]


def _compare(record: dict[str, Any], rows: list[Row], model: FellegiSunter) -> None:
    match_settings = MatchSettings()
    found = _dicts(rows)
    reference = score_record(model, record, found, match_settings, scalar=False)
    assert score_record(model, record, found, match_settings) == reference, (
        "online_scalar.py must mirror the batch comparisons and rules (comparisons.py, "
        "name_agreement.py, rules.py)"
    )


@pytest.mark.parametrize("model", list(MODELS), ids=list(MODELS))
def test_scalar_path_scores_generated_records_as_the_frame_path(model: str) -> None:
    rng = random.Random(11)
    for _ in range(250):
        rows = [_row(rng, i) for i in range(rng.randint(1, 8))]
        _compare(_query(rng), rows, MODELS[model])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(1, 12), model=st.sampled_from(list(MODELS)))
def test_scalar_path_agrees_on_any_draw(seed: int, size: int, model: str) -> None:
    rng = random.Random(seed)
    _compare(_query(rng), [_row(rng, i) for i in range(size)], MODELS[model])


def test_households_and_shared_mailboxes_reach_their_rules() -> None:
    """The batch-wide counts: a phone two given names share, a mailbox five records hold."""
    rng = random.Random(3)
    base = _row(rng, 0)._replace(first_name="Ann", last_name="Lee", phone="07911 123456",
                                 email="ann@lee.org", birth_year=None, birth_month=None,
                                 birth_day=None)  # fmt: skip
    family = [base._replace(source_id=f"r{i}", first_name=name, master_id=f"m_{i}")
              for i, name in enumerate(["Ann", "Tom", "Ewa", "Jan", "Mia", "Ann"])]  # fmt: skip
    for record in ({"first_name": "A", "last_name": "Lee", "phone": "+44 7911 123456"},
                   {"first_name": "Ann", "last_name": "Lee", "email": "ann@lee.org"}):  # fmt: skip
        for model in MODELS.values():
            _compare(record, family, model)
    query = {"first_name": "A", "last_name": "Lee", "phone": "07911123456"}
    scored = score_record(MODELS["vetoes_on"], query, _dicts(family), MatchSettings())
    decisions = {c.decision for c in scored}
    assert "veto:ambiguous_household" in decisions


def test_only_the_shipped_comparisons_take_the_scalar_path() -> None:
    assert online_scalar.supports(comparison_names())
    assert not online_scalar.supports(())
    assert not online_scalar.supports(("first_name", "no_such_comparison"))


def _pairs_near(threshold: float, rng: random.Random, count: int = 6) -> list[tuple[str, str]]:
    """Made-up name pairs whose Jaro-Winkler similarity is within 0.004 of ``threshold``."""
    from rapidfuzz.distance import JaroWinkler

    found: list[tuple[str, str]] = []
    while len(found) < count:
        a = "".join(rng.choice("aeilnrst") for _ in range(rng.randint(4, 9)))
        b = "".join(rng.choice("aeilnrst") for _ in range(rng.randint(4, 9)))
        if abs(JaroWinkler.normalized_similarity(a, b) - threshold) < 0.004:
            found.append((a.title(), b.title()))
    return found


@pytest.mark.parametrize("threshold", [0.80, 0.85, 0.90, 0.92, 0.95])
def test_similarities_at_a_threshold_get_the_same_level(threshold: float) -> None:
    rng = random.Random(int(threshold * 100))
    row = _row(rng, 0)._replace(postcode="SW1A 1AA", phone=None, email=None)
    for a, b in _pairs_near(threshold, rng):
        for first, last in ((a, "Lee"), ("Ann", a), (a, b)):
            record = {"first_name": first, "last_name": last, "postcode": "SW1A1AA",
                      "address_line1": f"12 {a} St", "birth_date": "1980-01-02"}  # fmt: skip
            others = [row._replace(first_name=b, last_name=last, address_line1=f"12 {b} St"),
                      row._replace(source_id="r1", first_name=last, last_name=b)]  # fmt: skip
            for model in MODELS.values():
                _compare(record, others, model)


def test_given_names_that_sound_alike_are_one_person_of_a_household() -> None:
    """``Smith``/``Smyth`` as given names: one person (metaphone), so their phone is private."""
    rng = random.Random(5)
    base = _row(rng, 0)._replace(last_name="Lee", phone="07911 123456", email=None,
                                 birth_year=None, birth_month=None, birth_day=None)  # fmt: skip
    pair = [base._replace(first_name="Smith"), base._replace(source_id="r1", first_name="Smyth")]
    record = {"first_name": "A", "last_name": "Lee", "phone": "07911 123456"}
    for model in MODELS.values():
        _compare(record, pair, model)
    decisions = {c.decision for c in score_record(MODELS["vetoes_on"], record, _dicts(pair),
                                                  MatchSettings())}  # fmt: skip
    assert "veto:ambiguous_household" not in decisions


def _okafors(*given: str) -> list[Any]:
    """One household sharing a phone, no e-mail or birth date: member i is master ``m_i``."""
    base = _row(random.Random(7), 0)._replace(
        last_name="Okafor", phone="020 7946 0018", email=None,
        birth_year=None, birth_month=None, birth_day=None,
    )  # fmt: skip
    return [base._replace(source_id=f"r{i}", first_name=name, master_id=f"m_{i}")
            for i, name in enumerate(given)]  # fmt: skip


def test_a_given_name_one_keystroke_off_at_a_household_phone_is_not_vetoed() -> None:
    """``Grsce`` is Grace mistyped (``s`` beside ``a``); ``John`` is another member than Joan."""
    family = _okafors("Chidi", "Grace", "Joan")
    slip = {"first_name": "Grsce", "last_name": "Okafor", "phone": "+44 20 7946 0018"}
    other = {"first_name": "John", "last_name": "Okafor", "phone": "+44 20 7946 0018"}
    for record in (slip, other, {**slip, "first_name": "Okafor", "last_name": "Grsce"}):
        for model in MODELS.values():
            _compare(record, family, model)

    def vetoed(record: dict[str, Any], master: str) -> bool:
        scored = score_record(MODELS["vetoes_on"], record, _dicts(family), MatchSettings())
        return any(c.master_id == master and c.decision == "veto:ambiguous_household"
                   for c in scored)  # fmt: skip

    assert not vetoed(slip, "m_1") and vetoed(other, "m_2")


def test_a_nickname_one_keystroke_off_at_a_household_phone_is_not_vetoed() -> None:
    """``Bcky`` is Becky mistyped, a nickname of Rebecca: it names that member."""
    family = _okafors("Chidi", "Rebecca", "Joan")
    slip = {"first_name": "Bcky", "last_name": "Okafor", "phone": "+44 20 7946 0018"}
    for model in MODELS.values():
        _compare(slip, family, model)
    scored = score_record(MODELS["vetoes_on"], slip, _dicts(family), MatchSettings())
    rebecca = [c.decision for c in scored if c.master_id == "m_1"]
    assert rebecca and rebecca[0] != "veto:ambiguous_household"


def test_a_record_without_given_name_is_not_guessed_at_a_one_name_household() -> None:
    """Only Chidi is named at the postcode, so nothing flags it; a nameless record near by
    surname and postcode still cannot say it is Chidi, online as in batch; at his phone it can."""
    rng = random.Random(9)
    base = _row(rng, 0)._replace(first_name="Chidi", last_name="Okafor", full_name=None,
                                 phone="020 7946 0018", email=None, address_line1="12 High Street",
                                 postcode="SW1A 1AA", city=None, birth_year=1975, birth_month=4,
                                 birth_day=2)  # fmt: skip
    rows = [base, base._replace(source_id="r1", master_id="m_0")]
    near = {"last_name": "Okafor", "postcode": "SW1A1AA"}
    at_phone = {"last_name": "Okafor", "phone": "+44 20 7946 0018"}
    for record in (near, at_phone):
        for model in MODELS.values():
            _compare(record, rows, model)

    def decisions(record: dict[str, Any]) -> set[str]:
        scored = score_record(MODELS["vetoes_on"], record, _dicts(rows), MatchSettings())
        return {c.decision for c in scored}

    assert decisions(near) == {"veto:ambiguous_household"}
    assert "veto:ambiguous_household" not in decisions(at_phone)
