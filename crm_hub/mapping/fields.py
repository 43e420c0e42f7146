"""The canonical fields a mapping may fill, per target, and how each value is made canonical.

Each field has a *kind* (text, decimal, timestamp, email, phone...). After the mapping's own
transforms, the kind normalises the value once, here (e-mail and phone through
``crm_hub.normalize``, money as exact decimals, times to UTC keeping the offset) or rejects the
record with a reason code a person can act on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from functools import lru_cache
from typing import Any

from crm_hub.errors import BadRecordError
from crm_hub.mapping.transforms import TRANSFORMS, DecimalArgs

__all__ = [
    "FIELDS",
    "LINE_FIELDS",
    "TARGETS",
    "TEXT_LIMITS",
    "FieldKind",
    "allowed_fields",
    "coerce",
    "converter",
    "is_allowed_field",
]

FieldKind = str  # text, decimal, timestamp, date, birth_date, email, emails, phone, phones,
# currency, country, bool, any

# target name in YAML -> canonical table
TARGETS: dict[str, str] = {
    "customer": "source_customers",
    "order": "orders",
    "invoice": "invoices",
    "payment": "payments",
    "event": "events",
}

TEXT_LIMITS: dict[str, int] = {
    "title": 64,
    "postcode": 32,
    "language": 16,
    "branch": 64,
    "channel": 32,
    "status": 32,
    "method": 32,
    "kind": 32,
}

FIELDS: dict[str, dict[str, FieldKind]] = {
    "customer": {
        "full_name": "text", "title": "text", "first_name": "text", "middle_name": "text",
        "last_name": "text", "email": "email", "emails": "emails", "phone": "phone",
        "phones": "phones", "birth_date": "birth_date", "address_line1": "text",
        "address_line2": "text", "city": "text", "region": "text", "postcode": "text",
        "country": "country", "language": "text", "branch": "text", "created_at": "timestamp",
        "updated_at": "timestamp",
    },
    "order": {
        "customer_source_id": "text", "branch": "text", "channel": "text", "status": "text",
        "placed_at": "timestamp", "currency": "currency", "total": "decimal",
    },
    "invoice": {
        "customer_source_id": "text", "number": "text", "status": "text",
        "issued_at": "timestamp", "due_date": "date", "currency": "currency",
        "amount": "decimal", "balance": "decimal",
    },
    "payment": {
        "customer_source_id": "text", "invoice_source_id": "text", "status": "text",
        "method": "text", "paid_at": "timestamp", "currency": "currency", "amount": "decimal",
    },
    "event": {
        "customer_source_id": "text", "email": "email", "kind": "text", "campaign_id": "text",
        "occurred_at": "timestamp",
    },
}  # fmt: skip

LINE_FIELDS: dict[str, FieldKind] = {
    "product": "text",
    "sku": "text",
    "quantity": "decimal",
    "unit_price": "decimal",
    "discount": "decimal",
    "amount": "decimal",
    "currency": "currency",
}

_CURRENCY = re.compile(r"[A-Za-z]{3}")
_COUNTRY = re.compile(r"[A-Za-z]{2}")
_CONSENT = re.compile(r"consent\.([a-z][a-z0-9_]{0,30}?)(_at)?")
_ATTRIBUTE = re.compile(r"attributes\.[A-Za-z0-9_]{1,64}")


def is_allowed_field(target: str, name: str) -> bool:
    """Whether ``name`` is a canonical field of ``target`` (or ``attributes.x``/``consent.x``)."""
    if name in FIELDS[target] or _ATTRIBUTE.fullmatch(name):
        return True
    return target == "customer" and _CONSENT.fullmatch(name) is not None


def allowed_fields(target: str) -> list[str]:
    """Every field name ``target`` accepts, for error messages."""
    extra = ["attributes.<name>"]
    if target == "customer":
        extra += ["consent.<channel>", "consent.<channel>_at"]
    return sorted(FIELDS[target]) + extra


def kind_of(target: str | None, name: str) -> FieldKind:
    """The kind of a field (``target`` None: an order line field)."""
    fields = LINE_FIELDS if target is None else FIELDS[target]
    if name in fields:
        return fields[name]
    if name.startswith("consent."):
        return "timestamp" if name.endswith("_at") else "bool"
    return "any"


# --- coercion ---------------------------------------------------------------------------------

_MAX_DECIMAL = Decimal(10) ** 14  # Numeric(18, 4)
_PLACES = Decimal("0.0001")
_TRUE = frozenset({"true", "yes", "y", "1", "on", "subscribed", "opted_in", "granted"})
_FALSE = frozenset({"false", "no", "n", "0", "off", "unsubscribed", "opted_out", "revoked"})


@dataclass(frozen=True, slots=True)
class Moment:
    """A timestamp in UTC with the source's offset kept (``+01:00``)."""

    utc: datetime
    offset: str


def _show(value: Any) -> str:
    text = f'"{value}"' if isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bad(value: Any, what: str, code: str) -> BadRecordError:
    return BadRecordError(f"{_show(value)} is not {what}", reason_code=code)


def _text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (dict, list)):
        raise _bad(value, "text", "not_text")
    text = value if isinstance(value, str) else str(value)
    if "\x00" in text:
        raise BadRecordError(f"{_show(text)} contains a NUL character", reason_code="invalid_text")
    text = text.strip()
    limit = TEXT_LIMITS.get(name)
    if limit and len(text) > limit:
        raise BadRecordError(
            f"{_show(text)} is longer than {limit} characters", reason_code="too_long"
        )
    return text or None


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, float):
        value = repr(value)
    number: Decimal | None = TRANSFORMS["decimal"].func(value, DecimalArgs())
    if number is None:
        return None
    if not number.is_finite() or abs(number) >= _MAX_DECIMAL:
        raise _bad(value, "a decimal below 10^14", "decimal_out_of_range")
    if int(number.as_tuple().exponent) < -4:
        raise _bad(value, "a decimal with at most 4 places", "decimal_out_of_range")
    return number.quantize(_PLACES)  # as stored: 4 places on every database


def _offset(delta: timedelta | None) -> str:
    minutes = int((delta or timedelta()).total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hours, mins = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{mins:02d}"


def _timestamp(value: Any, zone: tzinfo) -> Moment | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime(value.year, value.month, value.day)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            moment = datetime.fromtimestamp(value, UTC)
        elif isinstance(value, str):
            moment = datetime.fromisoformat(value.strip())
        else:
            raise ValueError
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        utc = moment.astimezone(UTC)
        if not 1 <= utc.year <= 9998:
            raise ValueError
        return Moment(utc, _offset(moment.utcoffset()))
    except (ValueError, OverflowError, OSError):
        raise _bad(value, "an ISO 8601 timestamp", "not_a_timestamp") from None


def _date(value: Any) -> date | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise _bad(value, "an ISO date (YYYY-MM-DD)", "not_a_date") from None


def _bool(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    if not text:
        return None
    raise _bad(value, "yes/no (true, false, yes, no, 1, 0, subscribed...)", "not_a_boolean")


def coerce(kind: FieldKind, name: str, value: Any, zone: tzinfo) -> Any:
    """Make a mapped value canonical for its kind (email/phone stay raw: see ``apply``).

    Raises:
        BadRecordError: the value cannot be this kind (reason code says which).
    """
    if kind == "text":
        return _text(name, value)
    if kind == "decimal":
        return _decimal(value)
    if kind == "timestamp":
        return _timestamp(value, zone)
    if kind == "date":
        return _date(value)
    if kind == "bool":
        return _bool(value)
    if kind == "currency":
        text = _text(name, value)
        if text is not None and not _CURRENCY.fullmatch(text):
            raise _bad(value, "an ISO 4217 currency code (e.g. EUR, GBP)", "bad_currency")
        return text.upper() if text else None
    if kind == "country":
        text = _text(name, value)
        if text is not None and not _COUNTRY.fullmatch(text):
            raise _bad(value, "an ISO 3166 country code (e.g. GB, DE)", "bad_country")
        return text.upper() if text else None
    if kind in ("emails", "phones"):
        items = value if isinstance(value, list) else [value]
        return [_text(name, item) for item in items if item is not None]
    if kind in ("email", "phone", "birth_date"):
        if isinstance(value, list):
            value = next((v for v in value if v not in (None, "")), None)
        if isinstance(value, date):
            return value.isoformat()
        return _text(name, value)
    return _json_safe(value)  # any: attributes keep JSON values as they are


def _json_safe(value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**63:
        return str(value)  # JSON readers (and orjson) stop at 64 bits
    if isinstance(value, (Decimal, date)):  # datetime is a date
        return str(value) if isinstance(value, Decimal) else value.isoformat()
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return value


# --- compiled coercion (the map stage's hot path) ---------------------------------------------

Converter = Callable[[Any], Any]


def converter(kind: FieldKind, name: str, zone: tzinfo) -> Converter:
    """``coerce`` for one field, decided once: same results and errors, less work per value.

    Text values skip the generic dispatch; timestamps given as text are remembered (a source
    repeats them), since a :class:`Moment` is immutable.
    """
    if kind == "timestamp":
        return _timestamp_converter(zone)
    if kind in ("text", "email", "phone", "birth_date", "country", "currency"):
        return _text_converter(kind, name, zone)
    if kind == "decimal":
        return _decimal
    if kind == "date":
        return _date
    if kind == "bool":
        return _bool
    return lambda value: coerce(kind, name, value, zone)


def _timestamp_converter(zone: tzinfo) -> Converter:
    @lru_cache(maxsize=16_384)
    def parse_text(value: str) -> Moment | None:
        return _timestamp(value, zone)

    def convert(value: Any) -> Any:
        if type(value) is str:
            return parse_text(value)
        return _timestamp(value, zone)

    return convert


def _text_converter(kind: FieldKind, name: str, zone: tzinfo) -> Converter:
    """Plain ``str`` values take the inlined ``_text`` path; anything else goes to ``coerce``."""
    limit = TEXT_LIMITS.get(name)
    pattern = _CURRENCY if kind == "currency" else _COUNTRY if kind == "country" else None

    def convert(value: Any) -> Any:
        if type(value) is not str or "\x00" in value:
            return coerce(kind, name, value, zone)
        text = value.strip()
        if limit and len(text) > limit:
            return coerce(kind, name, value, zone)  # raises the too_long error
        if pattern is None:
            return text or None
        if not text:
            return None
        if not pattern.fullmatch(text):
            return coerce(kind, name, value, zone)  # raises the bad_country/currency error
        return text.upper()

    return convert
