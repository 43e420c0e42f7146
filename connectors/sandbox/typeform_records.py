"""Typeform records: the birthday-club and feedback forms and their responses.

People answer for themselves: nicknames, lower-case names, the odd typo in the e-mail domain, a
birthday with day and month swapped. Answers are found by ``field.ref``; values are keyed by
answer type (``text``, ``email``, ``phone_number``, ``date``, ``choice``, ``choices``,
``boolean``, ``number``). A QR code on the receipt pre-fills the Square customer id as a hidden
field for some responses.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import numpy as np

from connectors.sandbox import ids, square_records, vocab
from connectors.sandbox.people import Person, rng_for
from connectors.sandbox.times import iso_seconds_z

if TYPE_CHECKING:
    from connectors.sandbox.world import World

_SALT_RESPONSE = 0x7F00
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

# (ref, field type, title, required); choices come from the vocabulary.
FORMS: tuple[tuple[str, tuple[tuple[str, str, str, bool], ...]], ...] = (
    (
        "Join the Copper Kettle Birthday Club",
        (
            ("first_name", "short_text", "What's your first name?", True),
            ("last_name", "short_text", "And your last name?", False),
            ("email", "email", "Your e-mail, so we can send your birthday treat", True),
            ("phone", "phone_number", "Mobile number (optional)", False),
            ("birthday", "date", "When is your birthday?", True),
            ("favourite_dish", "multiple_choice", "Your favourite dish?", False),
            ("allergies", "multiple_choice", "Any allergies we should know about?", False),
            ("home_branch", "dropdown", "Which kitchen do you visit most?", True),
            ("newsletter", "yes_no", "Can we send you our newsletter?", True),
        ),
    ),
    (
        "How was your visit?",
        (
            ("email", "email", "Your e-mail", False),
            ("branch", "dropdown", "Which kitchen did you visit?", True),
            ("visit_date", "date", "When did you visit?", False),
            ("rating", "opinion_scale", "How likely are you to recommend us?", True),
            ("comments", "long_text", "Anything else to tell us?", False),
        ),
    ),
)
HIDDEN_FIELDS = ("source", "customer_id")
_VALUE_KEYS = {
    "short_text": ("text", "text"),
    "long_text": ("text", "text"),
    "email": ("email", "email"),
    "phone_number": ("phone_number", "phone_number"),
    "date": ("date", "date"),
    "yes_no": ("boolean", "boolean"),
    "opinion_scale": ("number", "number"),
}


def short_id(seed: int, key: str, length: int) -> str:
    """A stable mixed-case id (form, field, choice and webhook ids)."""
    value = int.from_bytes(
        hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=16).digest(), "big"
    )
    out = []
    for _ in range(length):
        value, rem = divmod(value, 62)
        out.append(_B62[rem])
    return "".join(out)


def form_id(world: World, index: int) -> str:
    """Form id (8 characters, mixed case)."""
    return short_id(world.seed, f"typeform.form.{index}", 8)


def form_index(world: World, text: str) -> int | None:
    """Form index of a form id, or ``None``."""
    for i in range(len(FORMS)):
        if form_id(world, i) == text:
            return i
    return None


def field_id(world: World, form: int, ref: str) -> str:
    """Field id (12 characters)."""
    return short_id(world.seed, f"typeform.field.{form}.{ref}", 12)


def response_token(world: World, row: int) -> str:
    """Response id / token (32 lower-case characters)."""
    return ids.encode(world.seed, "typeform.response", row, 32, lower=True)


def response_row(world: World, token: str) -> int | None:
    """Row of a response token, or ``None``."""
    row = ids.decode(world.seed, "typeform.response", token, 32)
    return row if row is not None and row < len(world.tables["typeform.responses"]) else None


def _choices(ref: str) -> list[str]:
    if ref == "favourite_dish":
        return [vocab.MENU[i].name for i in vocab.MAIN_DISHES]
    if ref == "allergies":
        return [*vocab.ALLERGIES, "None"]
    if ref in ("home_branch", "branch"):
        return [b.name for b in vocab.BRANCHES]
    return []


def form_definition(world: World, index: int) -> dict[str, Any]:
    """The form as ``GET /forms/{id}`` returns it."""
    title, fields = FORMS[index]
    fid = form_id(world, index)
    out_fields = []
    for ref, kind, question, required in fields:
        field: dict[str, Any] = {
            "id": field_id(world, index, ref),
            "title": question,
            "ref": ref,
            "type": kind,
            "validations": {"required": required},
            "properties": {},
        }
        if kind in ("multiple_choice", "dropdown"):
            field["properties"] = {
                "choices": [
                    {
                        "id": short_id(world.seed, f"{fid}.{ref}.{c}", 12),
                        "ref": c.lower().replace(" ", "_"),
                        "label": c,
                    }
                    for c in _choices(ref)
                ],
                "allow_multiple_selection": ref == "allergies",
            }
        if kind == "opinion_scale":
            field["properties"] = {"steps": 11, "start_at_one": False}
        out_fields.append(field)
    return {
        "id": fid,
        "title": title,
        "type": "quiz" if index else "form",
        "hidden": list(HIDDEN_FIELDS),
        "fields": out_fields,
        "settings": {"is_public": True, "language": "en"},
        "_links": {"display": f"https://copperkettle.typeform.com/to/{fid}"},
    }


def form_summary(world: World, index: int, base_url: str) -> dict[str, Any]:
    """The form as listed by ``GET /forms``."""
    fid = form_id(world, index)
    return {
        "id": fid,
        "title": FORMS[index][0],
        "created_at": iso_seconds_z(world.anchor_ms - 3 * 365 * 86_400_000),
        "last_updated_at": iso_seconds_z(world.anchor_ms - 200 * 86_400_000),
        "settings": {"is_public": True},
        "self": {"href": f"{base_url}/forms/{fid}"},
        "theme": {"href": f"{base_url}/themes/qHWOQ7"},
        "_links": {"display": f"https://copperkettle.typeform.com/to/{fid}"},
    }


def _answer(world: World, form: int, ref: str, kind: str, value: Any) -> dict[str, Any]:
    field = {"id": field_id(world, form, ref), "type": kind, "ref": ref}
    if kind in _VALUE_KEYS:
        answer_type, key = _VALUE_KEYS[kind]
        return {"field": field, "type": answer_type, key: value}
    if isinstance(value, list):
        return {"field": field, "type": "choices", "choices": {"labels": value}}
    return {"field": field, "type": "choice", "choice": {"label": value}}


def _birthday_answers(world: World, person: Person, rng: Any) -> dict[str, Any]:
    first = (
        rng.choice(person.nicknames) if person.nicknames and rng.random() < 0.4 else person.first
    )
    last = person.last
    if rng.random() < 0.1:
        first, last = first.lower(), last.lower()
    email = person.email
    if rng.random() < 0.02:
        local, _, domain = email.partition("@")
        email = f"{local}@{vocab.DOMAIN_TYPOS.get(domain, domain)}"
    birth = person.birth
    day, month = birth.day, birth.month
    if day <= 12 and rng.random() < 0.03:
        day, month = month, day
    values: dict[str, Any] = {
        "first_name": first,
        "email": email,
        "birthday": f"{birth.year:04d}-{month:02d}-{day:02d}",
    }
    if rng.random() < 0.9:
        values["last_name"] = last
    if person.mobile and rng.random() < 0.6:
        values["phone"] = person.mobile.e164
    if rng.random() < 0.8:
        values["favourite_dish"] = vocab.MENU[person.favourite_dish].name
    if person.allergies:
        values["allergies"] = list(person.allergies)
    elif rng.random() < 0.5:
        values["allergies"] = ["None"]
    branch = person.household.branch if rng.random() < 0.85 else rng.randrange(len(vocab.BRANCHES))
    values["home_branch"] = vocab.BRANCHES[branch].name
    values["newsletter"] = rng.random() < 0.7
    return values


def _feedback_answers(world: World, person: Person, rng: Any, submitted: int) -> dict[str, Any]:
    branch = vocab.BRANCHES[
        person.household.branch if rng.random() < 0.75 else rng.randrange(len(vocab.BRANCHES))
    ]
    values: dict[str, Any] = {
        "branch": branch.name,
        "rating": rng.choice([10, 9, 9, 8, 8, 7, 6, 5, 3]),
    }
    if rng.random() < 0.8:
        values["email"] = (
            person.work_email if person.work_email and rng.random() < 0.2 else person.email
        )
    if rng.random() < 0.6:
        visit = submitted - rng.randrange(0, 5) * 86_400_000
        values["visit_date"] = iso_seconds_z(visit)[:10]
    if rng.random() < 0.5:
        template = rng.choice(vocab.FEEDBACK_COMMENTS)
        values["comments"] = template.format(
            dish=vocab.MENU[person.favourite_dish].name, branch=branch.name
        )
    return values


def square_row_of_person(world: World) -> np.ndarray:
    """Person index → a Square customer row of that person (-1: none), cached per table version."""
    table = world.tables["square.customers"]
    cached = world.caches.get("square.person_row")
    if cached is not None and cached[0] == (table.version, world.n_people):
        return cached[1]  # type: ignore[no-any-return]
    out = np.full(world.n_people, -1, dtype=np.int64)
    primary = table.col("variant") == 0
    out[table.col("person")[primary]] = np.flatnonzero(primary)
    world.caches["square.person_row"] = ((table.version, world.n_people), out)
    return out


def render_response(world: World, row: int) -> dict[str, Any]:
    """Body of a seeded response (timestamps are stamped by ``stamp_response``)."""
    table = world.tables["typeform.responses"]
    person = world.person(table.get("person", row))
    form = table.get("form", row)
    rng = rng_for(world.seed, _SALT_RESPONSE, row)
    if form == 0:
        values = _birthday_answers(world, person, rng)
    else:
        values = _feedback_answers(world, person, rng, table.get("updated", row))
    answers = [
        _answer(world, form, ref, kind, values[ref])
        for ref, kind, _, _ in FORMS[form][1]
        if ref in values
    ]
    hidden = {
        "source": rng.choice(["qr_table", "receipt", "instagram", "website"]),
        "customer_id": "",
    }
    if hidden["source"] in ("qr_table", "receipt"):
        sq_row = (
            int(square_row_of_person(world)[person.index]) if person.index < world.n_people else -1
        )
        if sq_row >= 0:
            hidden["customer_id"] = square_records.customer_id(world, sq_row)
    token = response_token(world, row)
    platform = rng.choice(["mobile", "mobile", "other"])
    return {
        "response_id": token,
        "token": token,
        "response_type": "completed",
        "metadata": {
            "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X)"
            if platform == "mobile"
            else "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
            "platform": platform,
            "referer": f"https://copperkettle.typeform.com/to/{form_id(world, form)}",
            "network_id": ids.hex_id(world.seed, "typeform.network", row, 10),
            "browser": "default",
        },
        "hidden": hidden,
        "calculated": {"score": 0},
        "variables": [],
        "answers": answers,
    }


def stamp_response(world: World, row: int, body: dict[str, Any]) -> None:
    """Write ``landed_at`` and ``submitted_at`` from the columns."""
    table = world.tables["typeform.responses"]
    body["landed_at"] = iso_seconds_z(table.get("created", row))
    body["submitted_at"] = iso_seconds_z(table.get("updated", row))
