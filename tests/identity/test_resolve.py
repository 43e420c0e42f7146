"""Hard cases on tiny inline data: each test is one rule or one trap."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from crm_hub.errors import ConfigError
from crm_hub.identity import MatchSettings, Overrides, Resolution, resolve
from crm_hub.identity.comparisons import comparison, comparison_names
from crm_hub.identity.scoring import FellegiSunter

Run = Callable[..., Resolution]


def person(source: str, source_id: str, **fields: str) -> dict[str, str]:
    """One input row."""
    return {"source": source, "source_id": source_id, **fields}


def same_person(resolution: Resolution, a: tuple[str, str], b: tuple[str, str]) -> bool:
    ids = resolution.records.set_index(["source", "source_id"])["master_id"]
    return bool(ids[a] == ids[b])


HOUSEHOLD = dict(last_name="Okafor", address_line1="12 High Street", postcode="SW1A 1AA",
                 phone="020 7946 0018")  # fmt: skip


def test_household_members_not_merged(run: Run) -> None:
    rows = [
        person("pos", "1", first_name="Chidi", birth_date="1975-04-02", **HOUSEHOLD),
        person("pos", "2", first_name="Grace", birth_date="1977-09-30", **HOUSEHOLD),
        person(
            "forms",
            "a",
            first_name="Emeka",
            birth_date="2004-01-15",
            email="emeka.okafor@gmail.com",
            **HOUSEHOLD,
        ),  # fmt: skip
        person(
            "acct",
            "x",
            full_name="Grace Okafor",
            address_line1="12 High St",
            postcode="sw1a1aa",
            phone="+44 20 7946 0018",
        ),  # fmt: skip
        person("news", "n", first_name="Chidi", last_name="Okafor", birth_date="1975-04-02"),
    ]
    result = run(rows)
    assert not same_person(result, ("pos", "1"), ("pos", "2"))
    assert not same_person(result, ("pos", "1"), ("forms", "a"))
    assert not same_person(result, ("pos", "2"), ("forms", "a"))
    assert same_person(result, ("pos", "2"), ("acct", "x"))
    assert same_person(result, ("pos", "1"), ("news", "n"))


def test_twins_with_one_birth_date_are_two_people(run: Run) -> None:
    rows = [
        person("pos", "1", first_name="Ava", birth_date="2001-05-05", **HOUSEHOLD),
        person("pos", "2", first_name="Isla", birth_date="2001-05-05", **HOUSEHOLD),
    ]
    assert not same_person(run(rows), ("pos", "1"), ("pos", "2"))


def test_record_without_given_name_at_a_shared_address_is_not_guessed(run: Run) -> None:
    rows = [
        person("pos", "1", first_name="Chidi", birth_date="1975-04-02", **HOUSEHOLD),
        person("pos", "2", first_name="Grace", birth_date="1977-09-30", **HOUSEHOLD),
        person("acct", "x", last_name="Okafor", address_line1="12 High St", postcode="SW1A1AA"),
    ]
    result = run(rows)
    assert not same_person(result, ("acct", "x"), ("pos", "1"))
    assert not same_person(result, ("acct", "x"), ("pos", "2"))


def test_record_without_given_name_at_a_one_name_household_is_not_guessed(run: Run) -> None:
    # Only Chidi's records give a name at this postcode, so nothing flags a household; a record
    # without a given name, near by surname and postcode only, cannot say it is Chidi.
    rows = [
        person("pos", "1", first_name="Chidi", birth_date="1975-04-02", **HOUSEHOLD),
        person("forms", "2", first_name="Chidi", birth_date="1975-04-02", **HOUSEHOLD),
        person("acct", "x", last_name="Okafor", postcode="SW1A1AA"),
    ]
    result = run(rows)
    assert same_person(result, ("pos", "1"), ("forms", "2"))
    assert not same_person(result, ("acct", "x"), ("pos", "1"))
    # The veto is what keeps it apart: surname and postcode would link it.
    unguarded = run(rows, settings=MatchSettings(vetoes=()))
    assert same_person(unguarded, ("acct", "x"), ("pos", "1"))


def test_record_without_given_name_links_on_its_own_mailbox(run: Run) -> None:
    rows = [
        person("pos", "1", first_name="Chidi", email="chidi.okafor@gmail.com", **HOUSEHOLD),
        person("news", "x", email="chidi.okafor@gmail.com", **HOUSEHOLD),
    ]
    assert same_person(run(rows), ("pos", "1"), ("news", "x"))


@pytest.mark.parametrize(
    ("short", "formal"),
    [("Bob", "Robert"), ("Liz", "Elizabeth"), ("Bill", "William"), ("Kate", "Katherine")],
)
def test_nickname_matches(run: Run, short: str, formal: str) -> None:
    rows = [
        person("pos", "1", first_name=short, last_name="Hadfield", phone="07911 123456"),
        person(
            "news",
            "2",
            first_name=formal,
            last_name="Hadfield",
            phone="+447911123456",
            birth_date="1980-01-02",
        ),  # fmt: skip
        person("pos", "3", first_name="Anne", last_name="Hadfield", phone="07700 111222"),
    ]
    result = run(rows)
    assert same_person(result, ("pos", "1"), ("news", "2"))
    assert not same_person(result, ("pos", "1"), ("pos", "3"))


@pytest.mark.parametrize(
    ("short", "formal"),
    [("B", "Rebecca"), ("D", "Richard"), ("T", "Anthony")],
    ids=["initial-of-becky", "initial-of-dick", "initial-of-tony"],
)
def test_initial_of_a_nickname_with_one_mailbox_matches(run: Run, short: str, formal: str) -> None:
    # The initial may be that of the name the person goes by; it read as "different" before.
    shared = dict(last_name="Hadfield", email="hadfield.r77@fastmail.com")
    rows = [
        person("pos", "1", first_name=short, phone="07911 123456", **shared),
        person("news", "2", first_name=formal, **shared),
        person("pos", "3", first_name="Anne", last_name="Hadfield", phone="07700 111222"),
    ]
    result = run(rows)
    assert same_person(result, ("pos", "1"), ("news", "2"))
    assert not same_person(result, ("news", "2"), ("pos", "3"))


def test_given_name_one_keystroke_off_at_a_household_phone_finds_its_member(run: Run) -> None:
    rows = [
        person("pos", "1", first_name="Chidi", birth_date="1975-04-02", **HOUSEHOLD),
        person("pos", "2", first_name="Grace", birth_date="1977-09-30", **HOUSEHOLD),
        person("pos", "3", first_name="Joan", birth_date="1979-01-12", **HOUSEHOLD),
        # ``s`` sits next to ``a``: a slip for Grace, not another member.
        person("acct", "x", first_name="Grsce", last_name="Okafor", phone="+44 20 7946 0018"),
        # John is one letter from Joan, but not one keystroke: a different member.
        person("acct", "y", first_name="John", last_name="Okafor", phone="020 7946 0018"),
    ]
    result = run(rows)
    assert same_person(result, ("acct", "x"), ("pos", "2"))
    assert not same_person(result, ("acct", "y"), ("pos", "3"))
    assert not same_person(result, ("acct", "x"), ("pos", "1"))


def test_swapped_names_match(run: Run) -> None:
    rows = [
        person("pos", "1", first_name="Ormridge", last_name="Jonathan", email="jo@ormridge.net"),
        person(
            "forms",
            "2",
            first_name="Jonathan",
            last_name="Ormridge",
            email="JO@ormridge.net",
            birth_date="1970-03-04",
        ),  # fmt: skip
        person(
            "acct",
            "3",
            full_name="Ormridge Jonathan",
            phone="07911 123456",
            birth_date="1970-03-04",
        ),  # fmt: skip
    ]
    result = run(rows)
    assert same_person(result, ("pos", "1"), ("forms", "2"))
    assert same_person(result, ("forms", "2"), ("acct", "3"))


def test_typos_match(run: Run) -> None:
    rows = [
        person(
            "pos",
            "1",
            first_name="Jonathan",
            last_name="Fairweather",
            birth_date="1981-06-07",
            postcode="LS1 4AP",
        ),  # fmt: skip
        person(
            "forms",
            "2",
            first_name="Jonathon",
            last_name="Fairwether",
            birth_date="1981-06-07",
            postcode="LS14AP",
        ),  # fmt: skip
    ]
    assert same_person(run(rows), ("pos", "1"), ("forms", "2"))


@pytest.mark.parametrize(
    "variant", ["+44 7911 123456", "0044 7911 123 456", "(07911) 123456", "447911123456"]
)
def test_phone_format_variants_match(run: Run, variant: str) -> None:
    rows = [
        person(
            "pos",
            "1",
            first_name="Priya",
            last_name="Raman",
            phone="07911 123456",
            birth_date="1990-02-03",
        ),  # fmt: skip
        person("acct", "2", full_name="Priya Raman", phone=variant, birth_date="1990-02-03"),
    ]
    assert same_person(run(rows), ("pos", "1"), ("acct", "2"))


def test_email_variants_match(run: Run) -> None:
    rows = [
        person("news", "1", first_name="Tom", email="Tom.Lister+news@googlemail.com"),
        person("forms", "2", first_name="Thomas", last_name="Lister", email="tomlister@gmail.com"),
    ]
    assert same_person(run(rows), ("news", "1"), ("forms", "2"))


def test_junk_email_creates_no_edge(run: Run) -> None:
    rows = [
        person("pos", str(i), first_name=name, last_name=surname, email="test@example.com")
        for i, (name, surname) in enumerate(
            [("Ann", "Lee"), ("Raj", "Patel"), ("Sven", "Berg"), ("Mia", "Rossi"),
             ("Kofi", "Mensah")]
        )
    ]  # fmt: skip
    result = run(rows)
    assert result.records["master_id"].nunique() == 5
    assert result.stats.candidates == 0


def test_junk_phone_creates_no_edge(run: Run) -> None:
    rows = [
        person("pos", "1", first_name="Ann", last_name="Lee", phone="0000000000"),
        person("pos", "2", first_name="Raj", last_name="Patel", phone="00000 000000"),
    ]
    assert run(rows).stats.candidates == 0


def test_different_birth_dates_are_different_people(run: Run) -> None:
    rows = [
        person(
            "pos",
            "1",
            first_name="John",
            last_name="Walsh",
            birth_date="1950-01-01",
            phone="0121 496 0000",
        ),  # fmt: skip
        person(
            "pos",
            "2",
            first_name="John",
            last_name="Walsh",
            birth_date="1979-08-12",
            phone="0121 496 0000",
        ),  # fmt: skip
    ]
    assert not same_person(run(rows), ("pos", "1"), ("pos", "2"))


def test_cannot_link_beats_high_score(run: Run) -> None:
    rows = [
        person(
            "pos",
            "1",
            first_name="Mei",
            last_name="Chen",
            email="mei.chen@icloud.com",
            birth_date="1988-08-08",
        ),  # fmt: skip
        person(
            "forms",
            "2",
            first_name="Mei",
            last_name="Chen",
            email="mei.chen@icloud.com",
            birth_date="1988-08-08",
        ),  # fmt: skip
    ]
    assert same_person(run(rows), ("pos", "1"), ("forms", "2"))
    overrides = Overrides(cannot_link=((("pos", "1"), ("forms", "2")),))
    assert not same_person(run(rows, overrides=overrides), ("pos", "1"), ("forms", "2"))


def test_must_link_wins(run: Run) -> None:
    rows = [
        person("pos", "1", first_name="Ann", last_name="Lee"),
        person("acct", "9", first_name="Zed", last_name="Quist", birth_date="1960-01-01"),
    ]
    assert not same_person(run(rows), ("pos", "1"), ("acct", "9"))
    overrides = Overrides(must_link=((("pos", "1"), ("acct", "9")),))
    result = run(rows, overrides=overrides)
    assert same_person(result, ("pos", "1"), ("acct", "9"))
    assert list(result.links["reason"]) == ["must_link"]


def test_contradicting_overrides_are_a_config_error(run: Run) -> None:
    rows = [person("pos", str(i), first_name="Ann", last_name="Lee") for i in range(3)]
    overrides = Overrides(
        must_link=((("pos", "0"), ("pos", "1")), (("pos", "1"), ("pos", "2"))),
        cannot_link=((("pos", "0"), ("pos", "2")),),
    )
    with pytest.raises(ConfigError, match="cannot-link"):
        run(rows, overrides=overrides)


def test_chain_through_an_initial_is_split(run: Run) -> None:
    shared = dict(last_name="Ashworth", phone="07911 123456", postcode="M1 1AE")
    rows = [
        person("pos", "1", first_name="John", birth_date="1960-02-02", **shared),
        person("pos", "2", first_name="J", **shared),
        person("pos", "3", first_name="Jane", birth_date="1962-03-03", **shared),
    ]
    result = run(rows)
    assert not same_person(result, ("pos", "1"), ("pos", "3"))


def test_links_record_rule_or_score_and_levels(run: Run) -> None:
    rows = [
        person("pos", "1", first_name="Mei", last_name="Chen", email="mei.chen@icloud.com"),
        person("forms", "2", first_name="Mei", last_name="Chen", email="MEI.CHEN@icloud.com"),
    ]
    links = run(rows).links
    assert len(links) == 1
    link = links.iloc[0]
    assert link["reason"].startswith("rule:") or link["reason"] == "score"
    assert link["email"] == 2 and link["first_name"] == 5


def test_one_output_row_per_input_row_in_input_order(run: Run) -> None:
    rows = [person("b", "2", first_name="X"), person("a", "1", first_name="Y")]
    records = run(rows).records
    assert list(records["source_id"]) == ["2", "1"]
    assert list(records.columns[:3]) == ["source", "source_id", "master_id"]


def test_source_defaults_to_file() -> None:
    result = resolve(pd.DataFrame({"source_id": ["1", "2"], "first_name": ["A", "B"]}))
    assert list(result.records["source"]) == ["file", "file"]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"id": ["1"]}), "source_id"),
        (pd.DataFrame({"source_id": ["1", "1"]}), "duplicate"),
        (pd.DataFrame({"source_id": ["1", ""]}), "empty"),
    ],
    ids=["missing-column", "duplicate", "empty"],
)
def test_bad_identity_is_a_config_error(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(frame)


def test_custom_id_minter_is_used(run: Run) -> None:
    rows = [person("pos", "1", first_name="A"), person("pos", "2", first_name="B")]

    def minter(members: pd.DataFrame) -> pd.Series:
        clusters = members["cluster"].unique()
        return pd.Series([f"kept-{c}" for c in clusters], index=clusters)

    result = run(rows, id_minter=minter)
    assert result.records["master_id"].str.startswith("kept-").all()


def test_progress_reports_steps(run: Run) -> None:
    seen: list[tuple[str, float]] = []
    run([person("pos", "1", first_name="A")], progress=lambda s, d: seen.append((s, d)))
    assert seen[0][0] == "normalise" and seen[-1] == ("done", 1.0)


def test_threshold_setting_is_honoured(run: Run) -> None:
    rows = [
        person("pos", "1", first_name="Rowan", last_name="Ashdale"),
        person("news", "2", first_name="Rowan", last_name="Ashdale"),
    ]
    strict = run(rows, settings=MatchSettings(threshold=1.0, rules=()))
    assert not same_person(strict, ("pos", "1"), ("news", "2"))


def test_shared_family_mailbox_does_not_merge_different_given_names(run: Run) -> None:
    family = dict(HOUSEHOLD, email="okafor.family@gmail.com")
    rows = [
        person("pos", "1", first_name="Chidi", **family),
        person("pos", "2", first_name="Grace", **family),
    ]
    assert not same_person(run(rows), ("pos", "1"), ("pos", "2"))
    # Without the vetoes, the shared mailbox, phone and address would win.
    unguarded = run(rows, settings=MatchSettings(vetoes=()))
    assert same_person(unguarded, ("pos", "1"), ("pos", "2"))


def _prior_model(prior: float) -> FellegiSunter:
    """The comparisons' typical m and u, as a model trained elsewhere."""
    names = comparison_names()
    m = [np.asarray(comparison(n).prior_m, dtype=np.float64) for n in names]
    u = [np.asarray(comparison(n).prior_u, dtype=np.float64) for n in names]
    return FellegiSunter(names, m, u, [x.copy() for x in u], prior)


@pytest.mark.parametrize("check", [True, False])
def test_name_only_link_between_clusters_with_other_contacts_is_dropped(
    run: Run, check: bool
) -> None:
    # Two Bruce Hatherbournes, each known by an e-mail and a phone of his own; the two records
    # that share only the name do not say which one they are.
    rows = [
        person("pos", "a1", first_name="Bruce", last_name="Hatherbourne",
               email="bruce.h49@gmail.com", phone="07912 345111"),
        person("forms", "a2", first_name="Bruce", last_name="Hatherbourne",
               email="bruce.h49@gmail.com"),
        person("pos", "b1", first_name="Bruce", last_name="Hatherbourne",
               email="bruce1987@hotmail.com", phone="07912 345222"),
        person("forms", "b2", first_name="Bruce", last_name="Hatherbourne",
               phone="07912 345222"),
    ]  # fmt: skip
    found = run(rows, model=_prior_model(0.001), settings=MatchSettings(name_only_check=check))
    assert same_person(found, ("pos", "a1"), ("forms", "a2"))
    assert same_person(found, ("pos", "b1"), ("forms", "b2"))
    assert same_person(found, ("forms", "a2"), ("forms", "b2")) is not check


def test_name_only_link_is_kept_when_the_clusters_add_nothing(run: Run) -> None:
    # Zebedee Quartermaine's records form three groups (a phone, a mailbox, a birth date) that
    # share only the name, and no group knows another's fields: nothing tells namesakes apart.
    # Counted over the three clusters instead of one, the name looks commoner and scores lower;
    # the same evidence refused is no reason to drop the links.
    zeb = dict(first_name="Zebedee", last_name="Quartermaine")
    rows = [
        person("pos", "p1", phone="07911 123457", **zeb),
        person("pos", "p2", phone="07911 123457", **zeb),
        person("news", "e1", email="zq@fastmail.com", **zeb),
        person("news", "e2", email="zq@fastmail.com", **zeb),
        person("forms", "d1", birth_date="1980-03-04", **zeb),
        person("forms", "d2", birth_date="1980-03-04", **zeb),
    ]
    given = ["Ann", "Bob", "Cleo", "Dan", "Eve", "Finn", "Gus", "Hal", "Ida", "Jon", "Kim", "Lou",
             "Max", "Ned", "Ola", "Pat"]  # fmt: skip
    family = ["Lee", "Patel", "Berg", "Rossi", "Mensah", "Okafor", "Novak", "Silva"]
    for i, name in enumerate(given):
        surname = family[i % len(family)]
        mailbox = f"{name}.{surname}{i}@mail.com".lower()
        rows += [person(source, f"f{i}", first_name=name, last_name=surname, email=mailbox)
                 for source in ("pos", "news")]  # fmt: skip
    # Linked on names (a low threshold, no check), the name counts as one person's.
    links = run(rows, settings=MatchSettings(threshold=0.5, name_only_check=False)).links
    name_only = (links["email"] < 0) & (links["contact"] < 0) & (links["birth_date"] < 0)
    assert name_only.any()
    # Just under that score, the check sees the same evidence refused, and keeps the links.
    threshold = float(links.loc[name_only, "probability"].min()) - 1e-6
    found = run(rows, settings=MatchSettings(threshold=threshold, name_only_check=True))
    assert found.stats.name_only_dropped == 0
    assert all(
        same_person(found, ("pos", "p1"), other) for other in (("news", "e1"), ("forms", "d1"))
    )
