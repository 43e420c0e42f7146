"""The closed set of transforms a mapping may name, in a name-keyed registry.

A transform is a plain function ``(value, args) -> value``; ``args`` is the validated pydantic
model of its options (or ``None`` when it takes none). A transform that cannot use a value
raises :class:`~crm_hub.errors.BadRecordError` with a reason code; the map stage turns that into
one rejected row naming the mapping file, line and field. Nothing here evaluates text as code.

Scalar transforms given a list (a path with ``[]``) apply to each element; list transforms
(``concat``, ``coalesce``, ``first_non_empty``) take the whole list (from ``paths:``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crm_hub.errors import BadRecordError

__all__ = [
    "TRANSFORMS",
    "Transform",
    "apply_transform",
    "register_transform",
]

TransformFunc = Callable[[Any, Any], Any]


@dataclass(frozen=True, slots=True)
class Transform:
    """A registered transform: its function, its options model, and whether it takes a list."""

    name: str
    func: TransformFunc
    args: type[BaseModel] | None = None
    takes_list: bool = False
    doc: str = ""


TRANSFORMS: dict[str, Transform] = {}


def register_transform(
    name: str,
    func: TransformFunc,
    *,
    args: type[BaseModel] | None = None,
    takes_list: bool = False,
    doc: str = "",
) -> None:
    """Make ``name`` usable under ``transforms:`` in mapping files.

    Args:
        name: the name YAML uses, e.g. ``trim``.
        func: ``(value, args) -> value``; raises BadRecordError for unusable values.
        args: pydantic model of its options (``{name: {option: value}}`` in YAML).
        takes_list: the transform takes the whole list of values from ``paths:``.
        doc: one line for the docs and the JSON Schema.
    """
    TRANSFORMS[name] = Transform(name, func, args, takes_list, doc or (func.__doc__ or ""))


def apply_transform(transform: Transform, value: Any, args: Any) -> Any:
    """Apply one transform; scalar transforms map over lists element by element."""
    if isinstance(value, list) and not transform.takes_list:
        return [transform.func(item, args) for item in value]
    return transform.func(value, args)


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return value if isinstance(value, str) else str(value)


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text if len(text) <= 60 else text[:57] + "..."


# --- text -------------------------------------------------------------------------------------


def _trim(value: Any, _: None) -> Any:
    """Remove spaces at both ends; blank text becomes empty."""
    return value.strip() if isinstance(value, str) else value


def _lower(value: Any, _: None) -> Any:
    """Lower-case text."""
    return value.lower() if isinstance(value, str) else value


def _upper(value: Any, _: None) -> Any:
    """Upper-case text."""
    return value.upper() if isinstance(value, str) else value


class SplitNameArgs(_Args):
    """Options of ``split_name``."""

    part: Literal["first", "middle", "last", "title", "suffix"] = Field(
        description="Which part of the full name to keep."
    )


def _split_name(value: Any, args: SplitNameArgs) -> Any:
    """Split a full name (titles, particles, "Last, First") and keep one part."""
    from crm_hub.normalize import parse_full_name

    text = _text(value)
    return None if text is None else getattr(parse_full_name(text), args.part)


class ConcatArgs(_Args):
    """Options of ``concat``."""

    sep: str = Field(" ", description="Put between the non-empty parts.")


def _concat(value: Any, args: ConcatArgs) -> Any:
    """Join the non-empty values of ``paths:`` with ``sep``."""
    parts = [t.strip() for t in (_text(v) for v in _as_list(value)) if t and t.strip()]
    return args.sep.join(parts) or None


def _coalesce(value: Any, _: None) -> Any:
    """The first value of ``paths:`` that is present (not null)."""
    return next((v for v in _as_list(value) if v is not None), None)


def _first_non_empty(value: Any, _: None) -> Any:
    """The first value of ``paths:`` that is neither null nor blank text."""
    return next((v for v in _as_list(value) if v is not None and str(v).strip() != ""), None)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


class RegexArgs(_Args):
    """Options of ``regex_extract``."""

    pattern: str = Field(description="Regular expression searched in the text.")
    group: int | str = Field(0, description="Group to keep: a number or a name (0: the match).")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value


def _regex_extract(value: Any, args: RegexArgs) -> Any:
    """Keep the part of the text matching ``pattern`` (null when it does not match)."""
    text = _text(value)
    if text is None:
        return None
    found = re.search(args.pattern, text)
    if found is None:
        return None
    try:
        return found.group(args.group)
    except IndexError:
        raise BadRecordError(
            f"regex_extract: no group {args.group!r} in {args.pattern!r}",
            reason_code="bad_transform",
        ) from None


class LookupArgs(_Args):
    """Options of ``lookup``."""

    table: dict[str, Any] = Field(description="Source value → canonical value.")
    default: Any = Field(None, description="Used for values not in the table.")
    keep_unknown: bool = Field(
        False, description="Pass unknown values through unchanged instead of rejecting."
    )
    ignore_case: bool = Field(True, description="Compare without regard to case and spaces.")


def _lookup(value: Any, args: LookupArgs) -> Any:
    """Replace a value by the table's entry; unknown values are rejected unless told otherwise."""
    if value is None:
        return args.default
    key = str(value)
    table = args.table
    if args.ignore_case:
        key = key.strip().lower()
        table = {str(k).strip().lower(): v for k, v in table.items()}
    if key in table:
        return table[key]
    if args.default is not None:
        return args.default
    if args.keep_unknown:
        return value
    allowed = ", ".join(sorted(str(k) for k in args.table))
    raise BadRecordError(
        f"{_show(value)} is not in the lookup table (known: {allowed})", reason_code="unknown_value"
    )


# --- numbers and dates ------------------------------------------------------------------------

_PLAIN_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


class DecimalArgs(_Args):
    """Options of ``decimal``."""

    decimal_comma: bool = Field(False, description="The source writes 12,50 for 12.50.")


def _decimal(value: Any, args: DecimalArgs | None) -> Any:
    """Read an exact decimal from text or a number (never through a float)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, (bool, dict, list)):
        raise BadRecordError(f"{_show(value)} is not a decimal", reason_code="not_a_decimal")
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    text = str(value).strip().replace(" ", "")
    if args is not None and args.decimal_comma:
        text = text.replace(".", "").replace(",", ".")
    if not _PLAIN_DECIMAL.fullmatch(text):
        raise BadRecordError(f"{_show(value)} is not a decimal", reason_code="not_a_decimal")
    try:
        return Decimal(text)
    except InvalidOperation:
        raise BadRecordError(
            f"{_show(value)} is not a decimal", reason_code="not_a_decimal"
        ) from None


def _cents_to_decimal(value: Any, _: None) -> Any:
    """Minor units (cents, pence) to an exact amount: 1250 → 12.50."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise BadRecordError(
            f"{_show(value)} is not a whole number of cents", reason_code="not_an_integer"
        )
    text = str(value).strip()
    if not re.fullmatch(r"[+-]?\d+", text):
        raise BadRecordError(
            f"{_show(value)} is not a whole number of cents", reason_code="not_an_integer"
        )
    return Decimal(text).scaleb(-2)


def _sum(value: Any, _: None) -> Any:
    """Add up a list of amounts (e.g. ``Line[].Amount``) exactly; nulls are skipped."""
    numbers = [_decimal(v, None) for v in _as_list(value)]
    present = [n for n in numbers if n is not None]
    return sum(present, Decimal(0)) if present else None


class ParseDateArgs(_Args):
    """Options of ``parse_date``."""

    format: str = Field(
        description="strftime format, e.g. '%d/%m/%Y'; without %Y it is a birthday "
        "without a year; with %H it is a timestamp."
    )


def _parse_date(value: Any, args: ParseDateArgs) -> Any:
    """Read a date or timestamp written in ``format``."""
    text = _text(value)
    if text is None or not text.strip():
        return None
    text = text.strip()
    try:
        parsed = datetime.strptime(text, args.format)
    except ValueError:
        raise BadRecordError(
            f"{_show(value)} does not match the date format {args.format!r}",
            reason_code="not_a_date",
        ) from None
    if "%Y" not in args.format and "%y" not in args.format:
        return f"--{parsed.month:02d}-{parsed.day:02d}"
    if any(code in args.format for code in ("%H", "%I", "%M", "%S")):
        return parsed
    return parsed.date()


# --- normalisers (crm_hub.normalize) ----------------------------------------------------------


def _normalise_email(value: Any, _: None) -> Any:
    """E-mail with its domain lower-cased; unusable addresses stay as given (flagged later)."""
    from crm_hub.normalize import normalize_email

    text = _text(value)
    return None if text is None else (normalize_email(text).email or None)


class PhoneArgs(_Args):
    """Options of ``normalise_phone``."""

    region: str | None = Field(
        None, description="Region for numbers without a country code (default: the mapping's)."
    )


def _normalise_phone(value: Any, args: PhoneArgs | None) -> Any:
    """Phone in E.164; invalid numbers stay as given (flagged later, never lost)."""
    from crm_hub.normalize import normalize_phone

    text = _text(value)
    if text is None:
        return None
    e164 = normalize_phone(text, (args.region if args else None) or "GB").e164
    return e164 or text


def _normalise_name(value: Any, _: None) -> Any:
    """Unicode-normalised name with single spaces."""
    from crm_hub.normalize import clean_text

    return clean_text(value) if not isinstance(value, (dict, list)) else value


def _normalise_address(value: Any, _: None) -> Any:
    """Address line with single spaces (the match key is computed separately)."""
    from crm_hub.normalize import clean_text

    return clean_text(value) if not isinstance(value, (dict, list)) else value


def _normalise_postcode(value: Any, _: None) -> Any:
    """Postcode in upper case; UK codes spaced properly (sw1a1aa → SW1A 1AA)."""
    from crm_hub.normalize import normalize_postcode

    return normalize_postcode(value) if not isinstance(value, (dict, list)) else value


register_transform("trim", _trim)
register_transform("lower", _lower)
register_transform("upper", _upper)
register_transform("split_name", _split_name, args=SplitNameArgs)
register_transform("concat", _concat, args=ConcatArgs, takes_list=True)
register_transform("coalesce", _coalesce, takes_list=True)
register_transform("first_non_empty", _first_non_empty, takes_list=True)
register_transform("regex_extract", _regex_extract, args=RegexArgs)
register_transform("lookup", _lookup, args=LookupArgs)
register_transform("decimal", _decimal, args=DecimalArgs)
register_transform("cents_to_decimal", _cents_to_decimal)
register_transform("sum", _sum, takes_list=True)
register_transform("parse_date", _parse_date, args=ParseDateArgs)
register_transform("normalise_email", _normalise_email)
register_transform("normalise_phone", _normalise_phone, args=PhoneArgs)
register_transform("normalise_name", _normalise_name)
register_transform("normalise_address", _normalise_address)
register_transform("normalise_postcode", _normalise_postcode)
