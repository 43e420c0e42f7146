from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_hub.normalize import email_match_key, normalize_email, normalize_emails


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("John.Smith@Gmail.com", "johnsmith@gmail.com"),
        ("john.smith+shop@googlemail.com", "johnsmith@gmail.com"),
        ("J.Smith+news@Outlook.com", "j.smith@outlook.com"),
        ("  jane@shop.co.uk ", "jane@shop.co.uk"),
    ],
    ids=["gmail-dots-case", "googlemail-tag", "tag-other-provider", "whitespace"],
)
def test_match_key_applies_provider_rules(raw: str, key: str) -> None:
    assert normalize_email(raw).match_key == key


@pytest.mark.parametrize(
    "raw",
    ["test@example.com", "noemail@shop.co.uk", "n/a", "none@none.com", "xxx@gmail.com", "no email"],
)
def test_placeholders_are_junk_without_key(raw: str) -> None:
    result = normalize_email(raw)
    assert result.match_key is None
    assert result.flag in {"junk", "missing"}


@pytest.mark.parametrize("raw", ["john.smith@", "@gmail.com", "john..smith@gmail.com", "a b@c.com"])
def test_invalid_syntax_is_flagged(raw: str) -> None:
    result = normalize_email(raw)
    assert result.flag == "invalid"
    assert result.match_key is None


def test_missing_is_flagged_missing() -> None:
    assert normalize_email(None).flag == "missing"
    assert normalize_email("   ").flag == "missing"


def test_column_form_matches_scalar_form() -> None:
    values = ["A@B.com", None, "test@example.com", "A@B.com", "bad@"]
    frame = normalize_emails(values)
    assert list(frame["match_key"]) == [normalize_email(v).match_key for v in values]
    assert list(frame["flag"]) == [normalize_email(v).flag for v in values]


def test_match_key_is_idempotent() -> None:
    key = email_match_key("J.Smith+x@GoogleMail.com")
    assert email_match_key(key) == key


_local = st.from_regex(r"[a-z0-9][a-z0-9._+-]{0,20}[a-z0-9]", fullmatch=True)
_domain = st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9-]{1,8})?\.[a-z]{2,6}", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(_local, _domain)
def test_fast_path_agrees_with_email_validator(local: str, domain: str) -> None:
    address = f"{local}@{domain}"
    try:
        validate_email(address, check_deliverability=False)
        valid = True
    except EmailNotValidError:
        valid = False
    assert (normalize_email(address).flag != "invalid") == valid
