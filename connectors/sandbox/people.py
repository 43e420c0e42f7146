"""The people behind the records: households and persons, built lazily from the seed.

A person is the same everywhere: one birth date, one personal e-mail, one mobile. Each system
then writes that person its own way (see the ``*_records`` modules). Persons and households are
pure functions of ``(seed, index)`` plus a few numpy columns of the world (home branch, move
date), so the millionth person costs the same as the first and nothing is kept that can be
recomputed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from connectors.sandbox import vocab
from connectors.sandbox.variants import strip_accents

_SALT_HOUSEHOLD = 0x5EED_0001
_SALT_PERSON = 0x5EED_0002


def rng_for(seed: int, salt: int, index: int) -> random.Random:
    """A private random source for one thing (person, household, record) of a world."""
    return random.Random((seed * 0x9E3779B1 + salt) * 1_000_003 + index)


@dataclass(frozen=True, slots=True)
class Address:
    """A postal address in the UK."""

    line1: str
    city: str
    postcode: str
    county: str


@dataclass(frozen=True, slots=True)
class Phone:
    """A UK phone number as area/mobile prefix (no trunk 0) and subscriber digits."""

    area: str
    number: str

    @property
    def e164(self) -> str:
        """The number in E.164, e.g. ``+442079460123``."""
        return "+44" + self.area + self.number


@dataclass(frozen=True, slots=True)
class Household:
    """People living together: one surname, one address, one home phone."""

    index: int
    surname: str
    branch: int
    address: Address
    previous_address: Address | None
    moved_ms: int
    landline: Phone | None
    head_birth_year: int


@dataclass(frozen=True, slots=True)
class Person:
    """One real person of the world (the ground truth every record points back to)."""

    index: int
    household: Household
    rank: int
    sex: str
    first: str
    nicknames: tuple[str, ...]
    last: str
    birth: date
    email: str
    work_email: str | None
    company: str | None
    mobile: Phone | None
    favourite_dish: int
    allergies: tuple[str, ...]

    @property
    def person_id(self) -> str:
        """Ground-truth id, e.g. ``P0000042``."""
        return f"P{self.index:07d}"

    @property
    def household_id(self) -> str:
        """Ground-truth household id, e.g. ``H0000040``."""
        return f"H{self.household.index:07d}"

    def address_at(self, ms: int) -> Address:
        """The address this person lived at on the date ``ms`` (before or after a move)."""
        hh = self.household
        if hh.previous_address is not None and ms < hh.moved_ms:
            return hh.previous_address
        return hh.address

    @property
    def home_branch(self) -> vocab.Branch:
        """The branch nearest home."""
        return vocab.BRANCHES[self.household.branch]


def _address(rng: random.Random, city_index: int) -> Address:
    city = vocab.CITIES[city_index]
    district = rng.choice(city.postcodes)
    postcode = f"{district} {rng.randrange(1, 10)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
    postcode += rng.choice("ABDEFGHJLNPQRSTUWXYZ")
    line1 = f"{rng.randrange(1, 240)} {rng.choice(vocab.STREETS)}"
    if rng.random() < 0.18:
        line1 = f"Flat {rng.randrange(1, 30)}, {line1}"
    return Address(line1, city.name, postcode, city.county)


def _landline(rng: random.Random, city_index: int) -> Phone:
    city = vocab.CITIES[city_index]
    first = rng.choice("378") if city.area_code == "20" else rng.choice("2345789")
    rest = f"{rng.randrange(10 ** (city.subscriber_digits - 1)):0{city.subscriber_digits - 1}d}"
    return Phone(city.area_code, first + rest)


def _mobile(rng: random.Random) -> Phone:
    prefix = "7" + rng.choice("1234579") + f"{rng.randrange(100):02d}"
    return Phone(prefix, f"{rng.randrange(1_000_000):06d}")


def _email_local(rng: random.Random, first: str, last: str, tag: str) -> str:
    f = strip_accents(first).lower().replace(" ", "")
    family = strip_accents(last).lower().replace(" ", "").replace("'", "")
    pattern = rng.randrange(6)
    if pattern == 0:
        return f"{f}.{family}{tag}"
    if pattern == 1:
        return f"{f}{family}{tag}"
    if pattern == 2:
        return f"{f[0]}{family}{tag}"
    if pattern == 3:
        return f"{f}_{family}{tag}"
    if pattern == 4:
        return f"{family}.{f}{tag}"
    return f"{f}{tag}"


def _company(rng: random.Random) -> tuple[str, str]:
    a = rng.choice(vocab.COMPANY_WORDS_A)
    b = rng.choice(vocab.COMPANY_WORDS_B)
    suffix = rng.choice(vocab.COMPANY_SUFFIXES)
    return f"{a}{b} {suffix}", f"{a}{b}".lower() + rng.choice([".co.uk", ".com", ".io"])


class People:
    """Builds households and persons on demand, with a bounded cache.

    Args:
        seed: the world seed.
        anchor_ms: the instant the seeded data ends (ages are computed against it).
        email_digits: width of the per-person number that keeps e-mails unique.
        household_branch: callable giving a household's home branch index.
        household_moved: callable giving the instant a household moved (0: never moved).
        household_of: callable giving ``(household index, rank in household)`` of a person.
    """

    def __init__(
        self,
        seed: int,
        anchor_ms: int,
        email_digits: int,
        household_branch: Callable[[int], int],
        household_moved: Callable[[int], int],
        household_of: Callable[[int], tuple[int, int]],
    ) -> None:
        self.seed = seed
        self.anchor = date(1970, 1, 1) + timedelta(milliseconds=anchor_ms)
        self.email_digits = email_digits
        self._branch = household_branch
        self._moved = household_moved
        self._of = household_of
        self.household = lru_cache(maxsize=65_536)(self._household)
        self.person = lru_cache(maxsize=65_536)(self._person)

    def email_tag(self, index: int) -> str:
        """Digits unique to a person (an affine permutation of its index), e.g. ``"4821"``."""
        modulus = 10**self.email_digits
        if index >= modulus:  # more people than planned: widen, still unique per width
            return f"{index:0{self.email_digits + 3}d}"
        return f"{(7919 * index + self.seed) % modulus:0{self.email_digits}d}"

    def _household(self, index: int) -> Household:
        rng = rng_for(self.seed, _SALT_HOUSEHOLD, index)
        branch = self._branch(index)
        city_index = vocab.BRANCHES[branch].city_index
        surname = rng.choice(vocab.SURNAMES)
        address = _address(rng, city_index)
        moved_ms = self._moved(index)
        previous = None
        if moved_ms:
            old_city = city_index if rng.random() < 0.8 else rng.randrange(len(vocab.CITIES))
            previous = _address(rng, old_city)
        landline = _landline(rng, city_index) if rng.random() < 0.55 else None
        head_birth_year = self.anchor.year - rng.randrange(24, 80)
        return Household(
            index, surname, branch, address, previous, moved_ms, landline, head_birth_year
        )

    def _person(self, index: int) -> Person:
        hh_index, rank = self._of(index)
        hh = self.household(hh_index)
        rng = rng_for(self.seed, _SALT_PERSON, index)
        name = rng.choice(vocab.FIRST_NAMES)
        head_birth_year = hh.head_birth_year
        if rank == 0:
            year = head_birth_year
        elif rank == 1:
            year = head_birth_year + rng.randrange(-6, 7)
        else:
            year = min(head_birth_year + rng.randrange(24, 40), self.anchor.year - 16)
        birth = date(year, 1, 1) + timedelta(days=rng.randrange(365))
        tag = self.email_tag(index)
        email = (
            f"{_email_local(rng, name.name, hh.surname, tag)}@{rng.choice(vocab.PERSONAL_DOMAINS)}"
        )
        work_email = company = None
        if rank < 2 and rng.random() < 0.35 or rank >= 2 and rng.random() < 0.15:
            company, domain = _company(rng)
            first = strip_accents(name.name).lower()
            family = strip_accents(hh.surname).lower().replace(" ", "").replace("'", "")
            work_email = f"{first}.{family}.{tag}@{domain}"
        mobile = _mobile(rng) if rng.random() < 0.92 else None
        dish = rng.choice(vocab.MAIN_DISHES)
        allergies: tuple[str, ...] = ()
        if rng.random() < 0.22:
            allergies = tuple(sorted(rng.sample(vocab.ALLERGIES, rng.choice([1, 1, 2]))))
        return Person(
            index=index,
            household=hh,
            rank=int(rank),
            sex=name.sex,
            first=name.name,
            nicknames=name.nicknames,
            last=hh.surname,
            birth=birth,
            email=email,
            work_email=work_email,
            company=company,
            mobile=mobile,
            favourite_dish=dish,
            allergies=allergies,
        )
