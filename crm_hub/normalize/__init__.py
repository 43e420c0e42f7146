"""Normalisation of customer fields, shared by matching (``identity``) and the map stage.

Every normaliser has a scalar form for one value and a vectorised form for a column (computed
once per distinct value). Invalid and placeholder values become ``None`` with a flag
(``missing``, ``invalid``, ``junk``): they never link records and never reject a row.
"""

from __future__ import annotations

from crm_hub.normalize.address import (
    address_line_key,
    house_number,
    normalize_addresses,
    normalize_postcode,
    postcode_key,
)
from crm_hub.normalize.dates import BirthDate, normalize_birth_dates, parse_birth_date
from crm_hub.normalize.email import (
    NormalizedEmail,
    email_match_key,
    normalize_email,
    normalize_emails,
)
from crm_hub.normalize.names import (
    ParsedName,
    first_name_key,
    last_name_key,
    normalize_names,
    parse_full_name,
)
from crm_hub.normalize.nicknames import (
    are_nicknames,
    canonical_names,
    nickname_groups,
    nickname_table,
)
from crm_hub.normalize.phone import NormalizedPhone, normalize_phone, normalize_phones
from crm_hub.normalize.text import clean_text, fold, letters_key

__all__ = [
    "BirthDate",
    "NormalizedEmail",
    "NormalizedPhone",
    "ParsedName",
    "address_line_key",
    "are_nicknames",
    "canonical_names",
    "clean_text",
    "email_match_key",
    "first_name_key",
    "fold",
    "house_number",
    "last_name_key",
    "letters_key",
    "nickname_groups",
    "nickname_table",
    "normalize_addresses",
    "normalize_birth_dates",
    "normalize_email",
    "normalize_emails",
    "normalize_names",
    "normalize_phone",
    "normalize_phones",
    "normalize_postcode",
    "parse_birth_date",
    "parse_full_name",
    "postcode_key",
]
