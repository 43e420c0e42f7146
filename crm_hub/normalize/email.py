"""E-mail addresses: syntax, normal form, provider-aware match key, placeholder detection.

Syntax is checked with email-validator (``check_deliverability=False``: no DNS). A conservative
pattern accepts plain ASCII addresses without calling it, because at a million rows the library
call dominates; anything the pattern does not accept goes through email-validator. Tests pin the
pattern to email-validator alone (``_normalize(..., fast=False)``).

The *match key* is what two records must share to have "the same mailbox": lower case, ``+tag``
removed, and for Gmail the dots of the local part removed and ``googlemail.com`` read as
``gmail.com``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

from crm_hub.normalize.text import clean_text, spread, unique_apply

__all__ = [
    "EMAIL_FLAGS",
    "email_match_keys",
    "NormalizedEmail",
    "email_match_key",
    "normalize_email",
    "normalize_emails",
]

EMAIL_FLAGS = ("missing", "invalid", "junk")
"""Flags an e-mail can carry; ``None`` means usable."""

_FAST = re.compile(
    r"[a-z0-9_%+\-]+(?:\.[a-z0-9_%+\-]+)*@(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}"
)
# email-validator's own list (one label each), so the fast path refuses exactly what it refuses
_SPECIAL_TLDS = frozenset(SPECIAL_USE_DOMAIN_NAMES)
# RFC 2142 role mailboxes (info@, postmaster@...): email-validator lower-cases their local part.
_ROLE_MAILBOXES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)
_GMAIL = frozenset({"gmail.com", "googlemail.com"})

_JUNK_LOCAL = frozenset(
    {
        "test", "testing", "tester", "noemail", "nomail", "no-email", "no_email", "none",
        "no", "na", "n.a", "null", "nil", "nobody", "noreply", "no-reply", "donotreply",
        "do-not-reply", "unknown", "dummy", "fake", "asdf", "asd", "qwerty", "abc", "abc123",
        "xxx", "xx", "x", "email", "e-mail", "example", "sample", "customer", "guest",
        "noone", "no.one", "notgiven", "not.given", "notprovided", "declined", "refused",
        "a", "aa", "aaa", "123", "1234", "12345", "nothanks", "no.thanks", "idontknow",
    }
)  # fmt: skip
_JUNK_DOMAINS = frozenset(
    {
        "example.com", "example.org", "example.net", "example.co.uk", "test.com", "test.co.uk",
        "noemail.com", "nomail.com", "none.com", "no.com", "email.com.invalid", "domain.com",
        "xxx.com", "x.com", "abc.com", "asdf.com", "fake.com", "dummy.com", "null.com",
        "unknown.com", "noemail.co.uk", "nowhere.com", "mailinator.com",
    }
)  # fmt: skip
_JUNK_RAW = frozenset({"no email", "noemail", "none given", "not given", "unknown", "no", "x"})


@dataclass(frozen=True, slots=True)
class NormalizedEmail:
    """One e-mail address after normalisation.

    Attributes:
        email: the address with its domain lower-cased (local part as given), or ``None``.
        match_key: the provider-aware key two records must share, or ``None``.
        domain: the lower-cased domain, or ``None``.
        flag: ``None`` when usable, else one of ``missing``, ``invalid``, ``junk``.
    """

    email: str | None
    match_key: str | None
    domain: str | None
    flag: str | None


_SLOTS = vars(NormalizedEmail)
_SET_EMAIL, _SET_KEY = _SLOTS["email"].__set__, _SLOTS["match_key"].__set__
_SET_DOMAIN, _SET_FLAG = _SLOTS["domain"].__set__, _SLOTS["flag"].__set__


def _make(email: str, match_key: str | None, domain: str, flag: str | None) -> NormalizedEmail:
    """``NormalizedEmail(...)`` for a third less: the frozen ``__init__`` sets each slot through
    ``object.__setattr__``; this sets them directly, with the same result."""
    made = object.__new__(NormalizedEmail)
    _SET_EMAIL(made, email)
    _SET_KEY(made, match_key)
    _SET_DOMAIN(made, domain)
    _SET_FLAG(made, flag)
    return made


_COLUMNS = ("email", "match_key", "domain", "flag")
_MISSING = NormalizedEmail(None, None, None, "missing")


def email_match_key(address: str) -> str:
    """Return the provider-aware match key of a syntactically valid address.

    Example:
        >>> email_match_key("John.Smith+shop@GoogleMail.com")
        'johnsmith@gmail.com'
    """
    return _match_key_of_lower(address.lower())


def _match_key_of_lower(address: str) -> str:
    local, _, domain = address.rpartition("@")
    local = local.split("+", 1)[0] or local
    if domain in _GMAIL:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


def _is_junk(local: str, domain: str) -> bool:
    base = local.split("+", 1)[0]
    if base in _JUNK_LOCAL or domain in _JUNK_DOMAINS:
        return True
    compact = base.replace(".", "").replace("_", "").replace("-", "")
    return len(compact) >= 2 and compact.count(compact[0]) == len(compact)  # one repeated sign


def normalize_email(value: object) -> NormalizedEmail:
    """Normalise one e-mail address.

    Args:
        value: the raw value (``None`` and placeholders allowed).

    Returns:
        The normalised address with its match key and flag; invalid and placeholder addresses
        keep ``email`` for display but get no ``match_key``, so they never link records.

    Example:
        >>> normalize_email(" J.Smith@GMAIL.com ").match_key
        'jsmith@gmail.com'
        >>> normalize_email("test@example.com").flag
        'junk'
    """
    if type(value) is str:
        return _normalize_text(value)
    return _normalize(value)


@lru_cache(maxsize=65_536)
def _normalize_text(value: str) -> NormalizedEmail:
    return _normalize(value)


def _normalize(value: object, fast: bool = True) -> NormalizedEmail:
    """``fast=False``: email-validator alone, the reference the fast path must agree with."""
    text = clean_text(value)
    if text is None:
        return _MISSING
    lowered = text.lower()
    if lowered in _JUNK_RAW:
        return NormalizedEmail(text, None, None, "junk")
    at = lowered.find("@")  # the local part ends at the first "@" (or there is none)
    simple = len(lowered) <= 254 and "--" not in lowered and (at if at >= 0 else len(lowered)) <= 64
    if fast and simple and _FAST.fullmatch(lowered):
        local, _, domain = text.rpartition("@")
        domain = domain.lower()
        if domain.rsplit(".", 1)[-1] in _SPECIAL_TLDS:
            return NormalizedEmail(text, None, None, "invalid")
        lowered_local = local.lower()
        if lowered_local in _ROLE_MAILBOXES:
            local = lowered_local
        email = f"{local}@{domain}"
        if _is_junk(lowered_local, domain):
            return _make(email, None, domain, "junk")
        # The pattern admits ASCII only, so ``lowered`` is ``email.lower()``.
        return _make(email, _match_key_of_lower(lowered), domain, None)
    try:
        checked = validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        return NormalizedEmail(text, None, None, "invalid")
    email = checked.normalized
    local, _, domain = email.rpartition("@")
    domain = domain.lower()
    if _is_junk(local.lower(), domain):
        return _make(email, None, domain, "junk")
    return _make(email, email_match_key(email), domain, None)


def normalize_emails(values: Iterable[object] | pd.Series) -> pd.DataFrame:
    """Normalise a column of e-mail addresses, once per distinct value.

    Args:
        values: the raw column.

    Returns:
        A frame with columns ``email``, ``match_key``, ``domain``, ``flag`` in input order.
    """
    codes, results = unique_apply(values, normalize_email)
    return pd.DataFrame(
        {name: spread(codes, [getattr(r, name) for r in results]) for name in _COLUMNS}
    )


def email_match_keys(values: Iterable[object] | pd.Series) -> pd.DataFrame:
    """Return only ``match_key`` and ``flag`` for a column (cheaper than `normalize_emails`).

    Case and surrounding spaces are folded before the per-value work, so ``A@B.com`` and
    ``a@b.com`` are normalised once.
    """
    series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values
    folded = series.astype("string").str.strip().str.lower().astype(object)
    folded = folded.where(series.notna(), None)
    codes, results = unique_apply(folded, normalize_email)
    return pd.DataFrame(
        {
            "match_key": spread(codes, [r.match_key for r in results]),
            "flag": spread(codes, [r.flag for r in results]),
        }
    )
