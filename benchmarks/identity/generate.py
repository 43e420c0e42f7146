"""Synthetic CRM customers with ground truth, hard on purpose.

People appear in up to four systems (POS till, newsletter, web forms, accounting), sometimes
twice in one, with the problems real customer data has: nicknames, swapped first/last names,
initials, typos, missing fields, e-mail and phone format variants, people who moved, shared
office switchboards, placeholder values (``test@example.com``, ``0000000000``, ``1900-01-01``)
and households: people sharing surname, address and home phone but with their own first name,
birth date and e-mail (≥ 5 % of people; some twins share a birth date).

Deterministic from ``--seed``. Output: the `crm-hub match` input columns plus
``truth_person`` and ``truth_household`` (ignored by the matcher).

    python benchmarks/identity/generate.py --n 100000 --out /tmp/people.csv
"""

from __future__ import annotations

import argparse
import csv
import random
import string
import sys
import zlib
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pools  # noqa: E402

COLUMNS = [
    "source", "source_id", "first_name", "last_name", "full_name", "email", "phone",
    "birth_date", "address_line1", "address_line2", "city", "region", "postcode", "country",
    "truth_person", "truth_household",
]  # fmt: skip
SOURCES = [("pos", 0.35), ("newsletter", 0.25), ("forms", 0.2), ("accounting", 0.2)]
RECORDS_PER_PERSON = [(1, 0.40), (2, 0.28), (3, 0.17), (4, 0.10), (5, 0.035), (6, 0.015)]
MOBILE_PREFIXES = ["071", "073", "074", "075", "077", "078", "079"]
KEYBOARD = {c: n for c, n in zip(string.ascii_lowercase, [
    "qwsz", "vghn", "xdfv", "serfcx", "wsdr", "drtgvc", "ftyhbv", "gyujnb", "ujko", "huikmn",
    "jiolm", "kop", "njk", "bhjm", "iklp", "ol", "wa", "edft", "awedxz", "rfgy", "yhji",
    "cfgb", "qase", "zsdc", "tghu", "asx"], strict=True)}  # fmt: skip


@dataclass
class Address:
    """One dwelling."""

    number: int
    street: str
    street_type: str
    town: int
    postcode: str
    flat: int | None = None


@dataclass
class Person:
    """The truth about one person."""

    pid: int
    first: str
    last: str
    dob: tuple[int, int, int]
    address: Address
    mobile: str | None
    home: str | None
    emails: list[str]
    household: int | None = None
    previous: Address | None = None
    previous_home: str | None = None
    office: str | None = None
    work_email: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


class Generator:
    """Builds people, then their records, from one seeded random source."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.taken_emails: set[str] = set()
        self.taken_phones: set[str] = set()
        self.streets: list[tuple[str, str, int, str]] = []
        males = pools.MALE
        females = pools.FEMALE
        self.male_weights = [1 / (i + 8) ** 0.9 for i in range(len(males))]
        self.female_weights = [1 / (i + 8) ** 0.9 for i in range(len(females))]
        real = [s for s in pools.SURNAMES if s not in {"van", "der", "de", "berg", "jong"}]
        real += ["van der berg", "de jong", "de vries"]
        self.real_surnames = real
        self.surname_weights = [1 / (i + 3) for i in range(len(real))]
        self.tail = [h + t for h in pools.SURNAME_HEADS for t in pools.SURNAME_TAILS]

    # --- people --------------------------------------------------------------------------

    def first_name(self, male: bool) -> str:
        names, weights = (
            (pools.MALE, self.male_weights) if male else (pools.FEMALE, self.female_weights)
        )
        return self.rng.choices(names, weights)[0]

    def surname(self) -> str:
        if self.rng.random() < 0.55:
            return self.rng.choices(self.real_surnames, self.surname_weights)[0]
        name = self.rng.choice(self.tail)
        if self.rng.random() < 0.3:  # more tail variety
            name = self.rng.choice(pools.SURNAME_HEADS) + self.rng.choice(self.tail)
        return name

    def dob(self, low: int = 1935, high: int = 2006) -> tuple[int, int, int]:
        year = self.rng.randint(low, high)
        month = self.rng.randint(1, 12)
        day = self.rng.randint(1, 28 if month == 2 else 30 if month in (4, 6, 9, 11) else 31)
        return year, month, day

    def street(self) -> tuple[str, str, int, str]:
        if self.streets and self.rng.random() < 0.85:
            return self.rng.choice(self.streets)
        town = self.rng.randrange(len(pools.TOWNS))
        area = self.rng.choice(pools.TOWNS[town][2])
        outward = f"{area}{self.rng.randint(1, 28)}"
        entry = (self.rng.choice(pools.STREET_NAMES).title(), self.rng.choice(pools.STREET_TYPES),
                 town, outward)  # fmt: skip
        self.streets.append(entry)
        return entry

    def address(self) -> Address:
        name, kind, town, outward = self.street()
        number = self.rng.randint(1, 180)
        block = number // 12
        code_rng = random.Random(zlib.crc32(f"{name}|{kind}|{town}|{block}".encode()))
        inward = f"{code_rng.randint(1, 9)}{code_rng.choice('ABDEFGHJLNPQRSTUWXYZ')}" \
                 f"{code_rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"  # fmt: skip
        flat = self.rng.randint(1, 12) if self.rng.random() < 0.15 else None
        return Address(number, name, kind, town, f"{outward} {inward}", flat)

    def phone(self, landline_town: int | None = None) -> str:
        while True:
            if landline_town is None:
                number = self.rng.choice(MOBILE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"
            else:
                code = pools.TOWNS[landline_town][3]
                rest = 11 - len(code)
                number = code + str(self.rng.randint(2, 8)) + "".join(
                    str(self.rng.randrange(10)) for _ in range(rest - 1))  # fmt: skip
            if number not in self.taken_phones:
                self.taken_phones.add(number)
                return number

    def email(self, first: str, last: str, dob: tuple[int, int, int]) -> str:
        last = last.replace(" ", "").replace("'", "")
        patterns = [f"{first}.{last}", f"{first}{last}", f"{first[0]}{last}", f"{first}_{last}",
                    f"{first}.{last}{dob[0] % 100:02d}", f"{last}.{first}", f"{first}{dob[0]}",
                    f"{first[0]}.{last}{self.rng.randint(1, 99)}", f"{first}{last[0]}",
                    f"{last}{first[0]}{self.rng.randint(1, 999)}"]  # fmt: skip
        weights = [20, 12, 10, 4, 10, 4, 6, 8, 3, 6]
        for _ in range(20):
            local = self.rng.choices(patterns, weights)[0]
            domain = self.rng.choices(*zip(*pools.EMAIL_PROVIDERS, strict=True))[0]
            address = f"{local}@{domain}"
            mailbox = local.replace(".", "") if domain == "gmail.com" else local
            key = f"{mailbox}@{domain}"
            if key not in self.taken_emails:
                self.taken_emails.add(key)
                return address
            patterns.append(f"{local}{self.rng.randint(1, 9999)}")
            weights.append(30)
        raise RuntimeError("no free e-mail")

    def people(self, count: int) -> list[Person]:
        people: list[Person] = []
        household_id = 0
        offices = [
            (self.phone(self.rng.randrange(len(pools.TOWNS))), domain)
            for domain in pools.COMPANY_DOMAINS
            for _ in range(max(1, count // 20000))
        ]
        while len(people) < count:
            if self.rng.random() < 0.045:  # a household: 2-4 people under one roof
                size = self.rng.choices([2, 3, 4], [0.5, 0.3, 0.2])[0]
                members = self.household(len(people), size, household_id)
                household_id += 1
                people.extend(members)
            else:
                people.append(self.single(len(people)))
        people = people[:count]
        for person in people:
            if self.rng.random() < 0.03:
                person.office, domain = self.rng.choice(offices)
                local = f"{person.first[0]}.{person.last.replace(' ', '')}"
                person.work_email = f"{local}{person.pid % 97}@{domain}"
            if self.rng.random() < 0.12:
                person.previous = self.address()
                if person.home and self.rng.random() < 0.6:
                    person.previous_home = self.phone(person.previous.town)
        return people

    def single(self, pid: int) -> Person:
        male = self.rng.random() < 0.5
        first, last, dob = self.first_name(male), self.surname(), self.dob()
        address = self.address()
        home = self.phone(address.town) if self.rng.random() < 0.3 else None
        mobile = self.phone() if self.rng.random() < 0.95 else None
        emails = [self.email(first, last, dob)]
        if self.rng.random() < 0.2:
            emails.append(self.email(first, last, dob))
        return Person(pid, first, last, dob, address, mobile, home, emails)

    def household(self, pid: int, size: int, household: int) -> list[Person]:
        last = self.surname()
        address = self.address()
        home = self.phone(address.town)
        parent_year = self.rng.randint(1945, 1980)
        members: list[Person] = []
        used: set[str] = set()
        twins = size >= 3 and self.rng.random() < 0.1
        child_dob = None
        for k in range(size):
            male = self.rng.random() < 0.5
            first = self.first_name(male)
            while first in used:
                first = self.first_name(male)
            used.add(first)
            if k < 2:
                dob = self.dob(parent_year - 3, parent_year + 3)
            elif twins and child_dob is not None:
                dob = child_dob
            else:
                dob = self.dob(parent_year + 20, min(parent_year + 40, 2008))
                child_dob = dob
            mobile = self.phone() if self.rng.random() < 0.85 else None
            emails = [self.email(first, last, dob)]
            members.append(Person(pid + k, first, last, dob, address, mobile, home, emails,
                                  household))  # fmt: skip
        return members

    # --- corruption ---------------------------------------------------------------------

    def typo(self, word: str) -> str:
        if len(word) < 3:
            return word
        i = self.rng.randrange(1, len(word))
        kind = self.rng.random()
        if kind < 0.3:
            near = KEYBOARD.get(word[i].lower(), "e")
            return word[:i] + self.rng.choice(near) + word[i + 1 :]
        if kind < 0.55:
            return word[:i] + word[i + 1 :]
        if kind < 0.8 and i < len(word) - 1:
            return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
        return word[:i] + word[i] + word[i:]

    def case(self, text: str) -> str:
        roll = self.rng.random()
        if roll < 0.1:
            return text.upper()
        if roll < 0.2:
            return text.lower()
        return " ".join(w[:1].upper() + w[1:] if not w.startswith("o'") else "O'" + w[2:].title()
                        for w in text.split(" "))  # fmt: skip

    def phone_format(self, number: str) -> str:
        national = number[1:]
        mobile = number.startswith("07")
        if mobile:
            parts = (number[:5], number[5:])
            forms = [f"{parts[0]} {parts[1]}", number, f"+44 {national[:4]} {national[4:]}",
                     f"+44{national}", f"0044 {national[:4]} {national[4:]}",
                     f"({parts[0]}) {parts[1]}", f"{number[:5]}-{number[5:8]}-{number[8:]}",
                     f"+44 (0){national[:4]} {national[4:]}", f"44{national}"]  # fmt: skip
        else:
            code = next(t[3] for t in pools.TOWNS if number.startswith(t[3]))
            rest = number[len(code) :]
            forms = [f"{code} {rest[:len(rest) // 2]} {rest[len(rest) // 2:]}", number,
                     f"({code}) {rest}", f"+44 {code[1:]} {rest}", f"0044 {code[1:]} {rest}",
                     f"{code}-{rest}"]  # fmt: skip
        formatted = self.rng.choice(forms)
        if self.rng.random() < 0.01:
            digits = list(formatted)
            spots = [i for i, c in enumerate(digits) if c.isdigit()][4:]
            spot = self.rng.choice(spots)
            digits[spot] = str((int(digits[spot]) + self.rng.randint(1, 9)) % 10)
            formatted = "".join(digits)
        return formatted

    def email_variant(self, email: str) -> str:
        local, domain = email.split("@")
        roll = self.rng.random()
        if domain == "gmail.com":
            if roll < 0.15:
                local = local.replace(".", "") if "." in local else local[:2] + "." + local[2:]
            elif roll < 0.22:
                domain = "googlemail.com"
        if self.rng.random() < 0.05:
            local = f"{local}+{self.rng.choice(['shop', 'news', 'cafe', 'promo'])}"
        if self.rng.random() < 0.015:
            local = self.typo(local)
        out = f"{local}@{domain}"
        roll = self.rng.random()
        if roll < 0.06:
            out = out.upper()
        elif roll < 0.12:
            out = out[:1].upper() + out[1:]
        return out

    def address_lines(self, address: Address) -> tuple[str, str]:
        kind = address.street_type
        if self.rng.random() < 0.45:
            kind = pools.STREET_ABBREVIATIONS[kind] + ("." if self.rng.random() < 0.3 else "")
        street = address.street
        if self.rng.random() < 0.02:
            street = self.typo(street)
        sep = ", " if self.rng.random() < 0.2 else " "
        line1 = f"{address.number}{sep}{street} {kind}"
        line2 = ""
        if address.flat is not None:
            if self.rng.random() < 0.5:
                line2 = f"Flat {address.flat}"
            else:
                line1 = f"Flat {address.flat}, {line1}"
        if self.rng.random() < 0.1:
            line1 = line1.upper()
        return line1, line2

    def postcode(self, code: str) -> str:
        roll = self.rng.random()
        if roll < 0.15:
            return code.replace(" ", "")
        if roll < 0.25:
            return code.lower()
        return code

    # --- records ------------------------------------------------------------------------

    def record(self, person: Person, source: str) -> dict[str, str]:
        rng = self.rng
        rec = dict.fromkeys(COLUMNS, "")
        rec["source"] = source
        rec["truth_person"] = str(person.pid)
        rec["truth_household"] = "" if person.household is None else str(person.household)
        moved = person.previous is not None and rng.random() < 0.5
        address = person.previous if moved and person.previous else person.address
        home = person.previous_home if moved and person.previous_home else person.home
        profile = {
            "pos": dict(first=0.97, last=0.93, email=0.65, phone=0.85, dob=0.35, md=0.25,
                        postcode=0.6, address=0.2, full=0.0),
            "newsletter": dict(first=0.9, last=0.85, email=1.0, phone=0.05, dob=0.15, md=0.15,
                               postcode=0.25, address=0.0, full=0.0),
            "forms": dict(first=1.0, last=1.0, email=0.92, phone=0.7, dob=0.45, md=0.0,
                          postcode=0.8, address=0.75, full=0.3),
            "accounting": dict(first=1.0, last=1.0, email=0.8, phone=0.75, dob=0.05, md=0.0,
                               postcode=0.95, address=0.95, full=0.6),
        }[source]  # fmt: skip
        first, last = person.first, person.last
        if rng.random() < 0.2 and first in pools.NICKNAMES:
            first = rng.choice(pools.NICKNAMES[first])
        if rng.random() < 0.04:
            first = self.typo(first)
        if rng.random() < 0.04:
            last = self.typo(last)
        if rng.random() < 0.03:
            first = first[0] + ("." if rng.random() < 0.5 else "")
        first, last = self.case(first), self.case(last)
        if rng.random() < profile["full"]:
            roll = rng.random()
            if roll < 0.5:
                rec["full_name"] = f"{first} {last}"
            elif roll < 0.75:
                rec["full_name"] = f"{last}, {first}"
            elif roll < 0.9:
                rec["full_name"] = f"{rng.choice(['Mr', 'Mrs', 'Ms', 'Dr', 'Miss'])} {first} {last}"
            else:
                rec["full_name"] = f"{last} {first}"
        else:
            if rng.random() < profile["first"]:
                rec["first_name"] = first
            if rng.random() < profile["last"]:
                rec["last_name"] = last
            if rng.random() < 0.02 and rec["first_name"] and rec["last_name"]:
                rec["first_name"], rec["last_name"] = rec["last_name"], rec["first_name"]
        if rng.random() < profile["email"]:
            roll = rng.random()
            if roll < 0.015:
                rec["email"] = rng.choice(pools.JUNK_EMAILS)
            elif person.work_email and roll < 0.25:
                rec["email"] = person.work_email
            else:
                chosen = person.emails[0] if len(person.emails) == 1 or rng.random() < 0.85 \
                    else person.emails[1]  # fmt: skip
                rec["email"] = self.email_variant(chosen)
        if rng.random() < profile["phone"]:
            roll = rng.random()
            options = []
            if person.mobile:
                options += [person.mobile] * 3
            if home:
                options += [home] * (2 if person.household is not None else 1)
            if person.office and source in ("pos", "accounting") and roll < 0.3:
                rec["phone"] = self.phone_format(person.office)
            elif roll > 0.99:
                rec["phone"] = rng.choice(pools.JUNK_PHONES)
            elif options:
                rec["phone"] = self.phone_format(rng.choice(options))
        dob_roll = rng.random()
        y, m, d = person.dob
        if dob_roll < profile["dob"]:
            noise = rng.random()
            if noise < 0.01:
                rec["birth_date"] = "1900-01-01"
            elif noise < 0.015:
                rec["birth_date"] = f"{y}-02-30"
            elif noise < 0.035:
                if d <= 12 and d != m and rng.random() < 0.5:
                    m, d = d, m
                else:
                    d = d + 1 if d < 28 else d - 1
                rec["birth_date"] = f"{y:04d}-{m:02d}-{d:02d}"
            else:
                rec["birth_date"] = f"{y:04d}-{m:02d}-{d:02d}"
        elif dob_roll < profile["dob"] + profile["md"]:
            rec["birth_date"] = f"--{m:02d}-{d:02d}"
        town_name, region = pools.TOWNS[address.town][0], pools.TOWNS[address.town][1]
        if rng.random() < profile["address"]:
            rec["address_line1"], rec["address_line2"] = self.address_lines(address)
            rec["city"] = town_name if rng.random() < 0.9 else town_name.upper()
            if source == "accounting":
                rec["region"] = region
                rec["country"] = rng.choice(["GB", "United Kingdom", "UK", ""])
        if rng.random() < profile["postcode"]:
            rec["postcode"] = self.postcode(address.postcode)
        return rec


def generate_rows(n: int, seed: int) -> list[dict[str, str]]:
    """Generate about ``n`` records (exactly ``n``) with truth columns."""
    gen = Generator(seed)
    mean = sum(k * p for k, p in RECORDS_PER_PERSON)
    people = gen.people(int(n / mean) + 10)
    counts, weights = zip(*RECORDS_PER_PERSON, strict=True)
    names, shares = zip(*SOURCES, strict=True)
    rows: list[dict[str, str]] = []
    for person in people:
        for _ in range(gen.rng.choices(counts, weights)[0]):
            rows.append(gen.record(person, gen.rng.choices(names, shares)[0]))
            if len(rows) >= n:
                break
        if len(rows) >= n:
            break
    while len(rows) < n:  # top up with single-record people
        extra = gen.single(len(people))
        people.append(extra)
        rows.append(gen.record(extra, gen.rng.choices(names, shares)[0]))
    gen.rng.shuffle(rows)
    counters: dict[str, int] = {}
    prefixes = {"pos": "P", "newsletter": "N-", "forms": "F", "accounting": "C-"}
    for row in rows:
        counters[row["source"]] = counters.get(row["source"], 0) + 1
        row["source_id"] = f"{prefixes[row['source']]}{counters[row['source']]:07d}"
    return rows


def write_csv(rows: list[dict[str, str]], path: Path) -> None:
    """Write rows as UTF-8 CSV with the contract's header (plus truth columns)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def ensure_dataset(n: int, seed: int, directory: Path) -> Path:
    """Return the CSV for ``(n, seed)``, generating it once into ``directory``."""
    path = directory / f"people_n{n}_s{seed}.csv"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        write_csv(generate_rows(n, seed), tmp)
        tmp.replace(path)
    return path


def main() -> None:
    """Command line: generate one data set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    write_csv(generate_rows(args.n, args.seed), args.out)


if __name__ == "__main__":
    main()
