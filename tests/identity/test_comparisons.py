"""Comparison levels for single record pairs on tiny inline data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crm_hub.identity import MatchSettings
from crm_hub.identity.comparisons import PairContext, comparison, email_slip
from crm_hub.identity.name_agreement import given_names, keyboard_slip
from crm_hub.identity.records import prepare

NICKNAME, INITIAL, DIFFERENT = 4, 1, 0


def _first_name_level(a: str, b: str) -> int:
    rows = [{"source_id": str(i), "first_name": name, "last_name": "Hadfield"}
            for i, name in enumerate((a, b))]  # fmt: skip
    ctx = PairContext(prepare(pd.DataFrame(rows)), np.array([0]), np.array([1]), MatchSettings())
    return int(comparison("first_name").function(ctx)[0])


@pytest.mark.parametrize(
    ("a", "b", "level"),
    [
        ("Rick", "Patrick", NICKNAME),  # rick is in six nickname groups, Patrick's the fourth
        ("Bert", "Herbert", NICKNAME),
        ("B", "Rebecca", INITIAL),  # Becky
        ("D", "Richard", INITIAL),  # Dick
        ("R", "Richard", INITIAL),
        ("B", "Anne", DIFFERENT),
        ("Rick", "Anne", DIFFERENT),
    ],
)
def test_first_name_knows_every_nickname_and_its_initial(a: str, b: str, level: int) -> None:
    assert _first_name_level(a, b) == level
    assert _first_name_level(b, a) == level


def _contact_level(a: dict[str, str], b: dict[str, str]) -> int:
    rows = [{"source_id": str(i), **fields} for i, fields in enumerate((a, b))]
    ctx = PairContext(prepare(pd.DataFrame(rows)), np.array([0]), np.array([1]), MatchSettings())
    return int(comparison("contact").function(ctx)[0])


SAME_POSTCODE, SIMILAR_ADDRESS = 1, 2


@pytest.mark.parametrize(
    ("b", "level"),
    [
        # a postcode typo in one town hides nothing: similar address
        ({"address_line1": "12 Mullan Street", "postcode": "4153", "city": "Mansfield"},
         SIMILAR_ADDRESS),
        ({"address_line1": "12 Mullan St", "postcode": "4153", "city": "MANSFIELD"},
         SIMILAR_ADDRESS),
        # another street in the town: the postcode mistyped, no more
        ({"address_line1": "7 Ocean Parade", "postcode": "4153", "city": "Mansfield"},
         SAME_POSTCODE),
        ({"postcode": "4125", "city": "Mansfield"}, SAME_POSTCODE),
        # another town, or a postcode more than one slip away: different
        ({"address_line1": "12 Mullan Street", "postcode": "2150", "city": "Parramatta"}, 0),
        ({"address_line1": "7 Ocean Parade", "postcode": "4351", "city": "Mansfield"}, 0),
    ],
)  # fmt: skip
def test_same_street_address_across_a_postcode_typo_in_one_town(
    b: dict[str, str], level: int
) -> None:
    a = {"address_line1": "12 Mullan Street", "postcode": "4152", "city": "Mansfield"}
    assert _contact_level(a, b) == level
    assert _contact_level(b, a) == level


@pytest.mark.parametrize(
    ("a", "b", "slip"),
    [
        ("grace", "grsce", True),  # neighbouring key
        ("john", "jonh", True),  # swapped neighbours
        ("annette", "anette", True),  # dropped letter
        ("joan", "john", False),  # h is far from a: another name
        ("mary", "mark", False),
        ("ann", "anne", False),  # too short to tell
    ],
)
def test_keyboard_slip(a: str, b: str, slip: bool) -> None:
    assert keyboard_slip(a, b) is slip
    assert keyboard_slip(b, a) is slip


@pytest.mark.parametrize(
    ("a", "b", "slip"),
    [
        ("jsutin.humden", "justin.humden", True),  # swapped neighbours
        ("angela.smirh", "angela.smith", True),  # neighbouring key
        ("martha.jarrvis65", "martha.jarvis65", True),  # a letter doubled
        ("robinsonp287", "robinsonp278", True),
        ("anthonyatkinsn82", "anthonyatkinson82", False),  # a letter dropped: or a name
        ("annsmith", "annesmith", False),
        ("mwilson41", "mwilson91", False),  # another number
        ("rthomas", "dthomas", False),  # the initial: another member of the home
        ("jsmth", "jsmith", False),  # too short to tell
    ],
)
def test_email_slip(a: str, b: str, slip: bool) -> None:
    assert email_slip(a, b) is slip
    assert email_slip(b, a) is slip


def _email_level(a: str, b: str) -> int:
    rows = [{"source_id": str(i), "last_name": "Humden", "email": mail}
            for i, mail in enumerate((a, b))]  # fmt: skip
    ctx = PairContext(prepare(pd.DataFrame(rows)), np.array([0]), np.array([1]), MatchSettings())
    return int(comparison("email").function(ctx)[0])


@pytest.mark.parametrize(
    ("b", "level"),
    [
        ("Justin.Humden+shop@sky.com", 2),  # one mailbox
        ("jsutin.humden@sky.com", 1),  # one keystroke off
        ("jsutin.humden@gmail.com", 0),  # another provider
        ("j.humden@sky.com", 0),
    ],
    ids=["exact", "slip", "slip-other-domain", "different"],
)
def test_email_one_slip_in_one_domain(b: str, level: int) -> None:
    assert _email_level("justin.humden@sky.com", b) == level


@pytest.mark.parametrize(
    "b",
    [
        {"address_line1": "12 Mullan St", "city": "Mansfield"},  # no postcode on one side
        {"address_line1": "12 MULLAN STREET", "city": "MANSFIELD"},
    ],
)
def test_same_street_line_in_one_town_without_a_postcode_is_the_same_address(
    b: dict[str, str],
) -> None:
    a = {"address_line1": "12 Mullan Street", "postcode": "4152", "city": "Mansfield"}
    assert _contact_level(a, b) == SAME_ADDRESS
    assert _contact_level(b, a) == SAME_ADDRESS
    elsewhere = {**b, "city": "Parramatta"}
    assert _contact_level(a, elsewhere) == 0


SAME_ADDRESS = 3


@pytest.mark.parametrize(
    ("b", "level"),
    [
        # a slip in both the postcode and the town's name: still the street in that town
        ({"address_line1": "24 Eddy Crescent", "postcode": "2211", "city": "White Paltch"},
         SIMILAR_ADDRESS),
        ({"address_line1": "24 Eddy Cres", "postcode": "2122", "city": "Whitepatch"},
         SIMILAR_ADDRESS),
        # another town, or a postcode more than one slip away: different
        ({"address_line1": "24 Eddy Crescent", "postcode": "2211", "city": "Bibra Lake"}, 0),
        ({"address_line1": "24 Eddy Crescent", "postcode": "2999", "city": "White Paltch"}, 0),
        ({"address_line1": "24 Eddy Crescent", "postcode": "21211", "city": "White Paltch"}, 0),
    ],
)  # fmt: skip
def test_same_street_across_a_slip_in_postcode_and_town(b: dict[str, str], level: int) -> None:
    a = {"address_line1": "24 Eddy Crescent", "postcode": "2121", "city": "White Patch"}
    assert _contact_level(a, b) == level
    assert _contact_level(b, a) == level


# One town, the postcodes a typo apart: a house number in a postcode cannot match.
TOWN_A = {"postcode": "3203", "city": "Mulgrave East"}
TOWN_B = {"postcode": "3023", "city": "Mulgrave East"}


@pytest.mark.parametrize(
    ("a", "b", "level"),
    [
        # lines swapped; a building only one record gives; the house number left out
        ({"address_line1": "3 Concept", "address_line2": "Bradfield Street"},
         {"address_line1": "3 Bradfield Street", "address_line2": "Concept"}, SIMILAR_ADDRESS),
        ({"address_line1": "60 Larkin Close"},
         {"address_line1": "60 Larkin Close", "address_line2": "Moline Village"},
         SIMILAR_ADDRESS),
        ({"address_line1": "Murray Crescent"},
         {"address_line1": "15 Murray Crescent", "address_line2": "Rowethorpe"},
         SIMILAR_ADDRESS),
        # a house number alone, or another street: no street in common, only the postcode
        ({"address_line1": "60"},
         {"address_line1": "60 Larkin Close", "address_line2": "Moline Village"}, SAME_POSTCODE),
        ({"address_line1": "60 Larkin Close"},
         {"address_line1": "60 Ocean Parade", "address_line2": "Larkin Village"}, SAME_POSTCODE),
    ],
)  # fmt: skip
def test_one_street_line_in_another_order_or_with_more_words(
    a: dict[str, str], b: dict[str, str], level: int
) -> None:
    assert _contact_level({**a, **TOWN_A}, {**b, **TOWN_B}) == level
    assert _contact_level({**b, **TOWN_A}, {**a, **TOWN_B}) == level


def _birth_date_level(a: str, b: str) -> int:
    rows = [{"source_id": str(i), "birth_date": value} for i, value in enumerate((a, b))]
    ctx = PairContext(prepare(pd.DataFrame(rows)), np.array([0]), np.array([1]), MatchSettings())
    return int(comparison("birth_date").function(ctx)[0])


ONE_TYPO, MISSING = 1, -1


@pytest.mark.parametrize(
    ("a", "b", "level"),
    [
        ("1979-02-81", "1979-08-21", ONE_TYPO),  # neighbouring digits swapped
        ("19790281", "1979-08-21", ONE_TYPO),
        ("1985-02-30", "1985-02-03", ONE_TYPO),
        ("1984-07-32", "1984-07-02", ONE_TYPO),  # one digit
        ("1985-02-30", "1990-05-05", MISSING),  # impossible and not a slip: no evidence
        ("1985-02-30", "1985-02-30", MISSING),  # two impossible dates do not agree
        ("1985-02-30", "--02-03", MISSING),  # a birthday without its year
        ("1920-13-45", "1920-01-15", MISSING),
    ],
)
def test_an_impossible_birth_date_is_a_typo_of_a_date_one_slip_away(
    a: str, b: str, level: int
) -> None:
    assert _birth_date_level(a, b) == level
    assert _birth_date_level(b, a) == level


def _name_levels(a: tuple[str, str], b: tuple[str, str]) -> tuple[int, int, list[str]]:
    """First- and last-name levels of two (given, family) names, and the given names read."""
    rows = [{"source_id": str(i), "first_name": first, "last_name": last}
            for i, (first, last) in enumerate((a, b))]  # fmt: skip
    ctx = PairContext(prepare(pd.DataFrame(rows)), np.array([0]), np.array([1]), MatchSettings())
    given = [str(name[0]) for name in given_names(ctx, np.array([0]))]
    levels = (int(comparison(n).function(ctx)[0]) for n in ("first_name", "last_name"))
    return *levels, given


@pytest.mark.parametrize(
    ("a", "b", "first", "last", "given"),
    [
        # a family name in the given-name field, the other names unlike: read as that family
        # name, given names different (the reading that keeps a household apart)
        (("Crook", "Channing"), ("Bethany", "Crook"), DIFFERENT, 4, {"channing", "bethany"}),
        (("Webb", "Mitchell"), ("Mitchell", "Mousellis"), DIFFERENT, 4, {"webb", "mousellis"}),
        # a straight name alike: no swap
        (("Thomas", "Butt"), ("Thomas", "Matthews"), 5, DIFFERENT, {"thomas"}),
        (("Mary", "Smith"), ("Smith", "Smyth"), DIFFERENT, 2, {"mary", "smith"}),
    ],
)  # fmt: skip
def test_one_name_crossed_into_the_other_field(
    a: tuple[str, str], b: tuple[str, str], first: int, last: int, given: set[str]
) -> None:
    for one, other in ((a, b), (b, a)):
        first_level, last_level, read = _name_levels(one, other)
        assert (first_level, last_level) == (first, last)
        assert set(read) == given
