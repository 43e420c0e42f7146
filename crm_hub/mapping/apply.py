"""Map one raw record to canonical rows, or to exactly one rejection: the map stage's core.

Pure: no store access. :func:`compile_mapping` turns a loaded mapping into per-stream plans
(paths split, transforms looked up, the file:line of every field) once, and compiles each plan
into closures (a getter, the transform steps, the kind's converter and where the value goes,
all decided per field, not per record); :func:`map_record` runs a plan on one record. Every
failure becomes a :class:`~crm_hub.store.rejected.Rejection` naming the record, the field, the
offending value, and the mapping file:line to fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from crm_hub.errors import BadRecordError
from crm_hub.mapping.customer import finish_customer
from crm_hub.mapping.fields import TARGETS, TEXT_LIMITS, Moment, converter, kind_of
from crm_hub.mapping.spec import FieldSpec, LoadedMapping, StreamSpec
from crm_hub.mapping.transforms import TRANSFORMS, Transform
from crm_hub.store.rejected import Rejection

__all__ = ["Mapped", "StreamPlan", "compile_mapping", "map_record", "reject"]

Segments = tuple[tuple[str, bool], ...]  # (key, is a list) per path part
Runner = Callable[[Any], Any]  # a field's payload (or line) -> its canonical value
Putter = Callable[[dict[str, Any], Any, str], None]  # (row, value, source): store the value
# (key, name, limit, run, put): key and limit are set for a plain text field (see _plain_text)
FieldStep = tuple[str | None, str, int, Runner, Putter]


@dataclass(frozen=True, slots=True)
class FieldPlan:
    """One field, ready to run."""

    name: str
    kind: str
    spec: FieldSpec
    paths: tuple[Segments, ...]
    steps: tuple[tuple[Transform, Any], ...]
    location: str


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """One stream's plan: its target table, id, fields and lines."""

    stream: str
    target: str
    table: str
    id_field: FieldPlan | None
    fields: tuple[FieldPlan, ...]
    lines_each: Segments | None
    line_fields: tuple[FieldPlan, ...]
    location: str
    zone: tzinfo
    phone_region: str
    currency: str | None
    # compiled by compile_mapping, in the mapping's order (run_lines: (run, put) per field)
    run_id: Runner | None = field(default=None, repr=False, compare=False)
    run_fields: tuple[FieldStep, ...] = field(default=(), repr=False, compare=False)
    run_lines: tuple[tuple[Runner, Putter], ...] = field(default=(), repr=False, compare=False)


@dataclass(slots=True)
class Mapped:
    """What a record became: a row of its target table, plus order lines."""

    table: str
    row: dict[str, Any]
    lines: list[dict[str, Any]]


def _segments(path: str) -> Segments:
    return tuple((part.removesuffix("[]"), part.endswith("[]")) for part in path.split("."))


def _plan(name: str, kind: str, spec: FieldSpec, location: str) -> FieldPlan:
    paths = tuple(_segments(p) for p in ([spec.path] if spec.path else spec.paths or []))
    steps = tuple((TRANSFORMS[t.name], t.args) for t in spec.transforms)
    return FieldPlan(name, kind, spec, paths, steps, location)


def _stream_plan(mapping: LoadedMapping, name: str, stream: StreamSpec) -> StreamPlan:
    spec = mapping.spec
    loc = ("streams", name)
    fields = tuple(
        _plan(key, kind_of(stream.target, key), f, mapping.where(*loc, "fields", key))
        for key, f in stream.fields.items()
    )
    lines = stream.lines
    line_fields = tuple(
        _plan(key, kind_of(None, key), f, mapping.where(*loc, "lines", "fields", key))
        for key, f in (lines.fields.items() if lines else ())
    )
    id_field = _plan("id", "text", stream.id, mapping.where(*loc, "id")) if stream.id else None
    return StreamPlan(
        stream=name,
        target=stream.target,
        table=TARGETS[stream.target],
        id_field=id_field,
        fields=fields,
        lines_each=_segments(lines.each) if lines else None,
        line_fields=line_fields,
        location=mapping.where(*loc),
        zone=ZoneInfo(spec.timezone),
        phone_region=spec.phone_region,
        currency=spec.currency,
    )


def compile_mapping(mapping: LoadedMapping) -> dict[str, StreamPlan]:
    """Plans for every stream of a loaded mapping, by raw stream name."""
    return {
        name: _compiled(_stream_plan(mapping, name, s)) for name, s in mapping.spec.streams.items()
    }


def _compiled(plan: StreamPlan) -> StreamPlan:
    zone = plan.zone
    return replace(
        plan,
        run_id=_runner(plan.id_field, zone) if plan.id_field else None,
        run_fields=tuple(
            (*_plain_text(f), _runner(f, zone), _putter(f, plan.target)) for f in plan.fields
        ),
        run_lines=tuple((_runner(f, zone), _putter(f, None)) for f in plan.line_fields),
    )


def _getter(plan: FieldPlan) -> Runner | None:
    """The value(s) at the field's path(s); ``_resolve`` with the common shapes unrolled."""
    if not plan.paths:
        return None
    if len(plan.paths) == 1 and plan.spec.path:
        segments = plan.paths[0]
        if any(each for _, each in segments):
            return lambda data: _resolve(data, segments)
        if len(segments) == 1:
            key = segments[0][0]
            return lambda data: data.get(key) if isinstance(data, dict) else None
        keys = tuple(key for key, _ in segments)

        def nested(data: Any) -> Any:
            for key in keys:
                data = data.get(key) if isinstance(data, dict) else None
            return data

        return nested
    paths = plan.paths
    return lambda data: [_resolve(data, p) for p in paths]


_FIELD_FAILURES = (BadRecordError, TypeError, ValueError, ArithmeticError)


def _field_error(plan: FieldPlan, value: Any, exc: Exception) -> FieldError:
    """A field's failure on ``value``: a BadRecordError as it is, anything else as bad_value."""
    if isinstance(exc, BadRecordError):
        return FieldError(plan, value, exc)
    return FieldError(plan, value, BadRecordError(str(exc), reason_code="bad_value"))


def _runner(plan: FieldPlan, zone: tzinfo) -> Runner:
    """One field as a closure: get, apply the transforms, convert to its kind, check required.

    The value a failure reports is the one the failing step was given (the path's value, or
    the constant when the path itself is unusable).
    """
    get = _getter(plan)
    convert = converter(plan.kind, plan.name, zone)
    steps = tuple((t.func, t.takes_list, args) for t, args in plan.steps)
    required = plan.spec.required
    constant: Any = plan.spec.value

    def run(data: Any) -> Any:
        value = constant
        try:
            if get is not None:
                value = get(data)
            for func, takes_list, args in steps:
                if isinstance(value, list) and not takes_list:
                    value = [func(item, args) for item in value]
                else:
                    value = func(value, args)
            result = convert(value)
        except _FIELD_FAILURES as exc:
            raise _field_error(plan, value, exc) from None
        if required and result in (None, "", []):
            raise FieldError(
                plan, value, BadRecordError("is required but empty", reason_code="missing_required")
            )
        return result

    if steps or required or get is None:
        return run

    def run_plain(data: Any) -> Any:  # a path and nothing else: the common case
        value = constant
        try:
            value = get(data)
            return convert(value)
        except _FIELD_FAILURES as exc:
            raise _field_error(plan, value, exc) from None

    return run_plain


_PLAIN_KINDS = frozenset({"text", "email", "phone", "birth_date"})


def _plain_text(plan: FieldPlan) -> tuple[str | None, str, int]:
    """``(key, name, length limit or 0)`` of a field :func:`map_record` may fill inline: one
    top-level key, no transforms, not required, a text kind with no pattern, stored as is.
    Inline it does what the field's runner and putter do for ``None`` and for text without
    NUL within the limit; any other value goes to them. Key ``None`` for any other field."""
    spec = plan.spec
    if (
        plan.kind not in _PLAIN_KINDS
        or plan.steps
        or spec.required
        or not spec.path
        or len(plan.paths) != 1
        or len(plan.paths[0]) != 1
        or plan.paths[0][0][1]
        or "." in plan.name
    ):
        return None, plan.name, 0
    return plan.paths[0][0][0], plan.name, TEXT_LIMITS.get(plan.name) or 0


def _putter(plan: FieldPlan, target: str | None) -> Putter:
    """Where a field's value goes in the row (see ``_put``), decided once."""
    name = plan.name
    if name.startswith("consent."):
        return _consent_putter(name)
    if name.startswith("attributes.") or plan.kind == "any":
        return lambda row, value, source: _put(row, name, value, source)
    if plan.kind == "timestamp":
        offset = "time_offset" if target == "customer" else f"{name}_offset"

        def put_moment(row: dict[str, Any], value: Any, source: str) -> None:
            if isinstance(value, Moment):
                row[name] = value.utc
                row[offset] = value.offset
            else:
                row[name] = value

        return put_moment

    def put(row: dict[str, Any], value: Any, source: str) -> None:
        row[name] = value

    return put


def _consent_putter(name: str) -> Putter:
    """``_put`` for a ``consent.<channel>[_at]`` field, its channel and part found once."""
    channel = name[8:]
    part = "at" if channel.endswith("_at") else "granted"
    channel = channel.removesuffix("_at")

    def put_consent(row: dict[str, Any], value: Any, source: str) -> None:
        if value is not None:
            entry = row.setdefault("consents", {}).setdefault(channel, {"source": source})
            entry[part] = value.utc.isoformat() if isinstance(value, Moment) else value

    return put_consent


class FieldError(Exception):
    """A field could not be mapped (wraps the transform's BadRecordError)."""

    def __init__(self, plan: FieldPlan, value: Any, error: BadRecordError) -> None:
        super().__init__(error.message)
        self.plan, self.value, self.error = plan, value, error


def _resolve(data: Any, segments: Segments) -> Any:
    values, many = [data], False
    for key, each in segments:
        found: list[Any] = []
        for value in values:
            item = value.get(key) if isinstance(value, dict) else None
            if each:
                many = True
                if isinstance(item, list):
                    found.extend(item)
                elif item is not None:
                    raise BadRecordError(
                        f"{key} is {type(item).__name__}, not a list", reason_code="not_a_list"
                    )
            else:
                found.append(item)
        values = found
    return values if many else values[0]


def _put(row: dict[str, Any], name: str, value: Any, source: str) -> None:
    if name.startswith("attributes."):
        if value is not None:
            row.setdefault("attributes", {})[name[11:]] = value
    elif name.startswith("consent."):
        channel = name[8:]
        part = "at" if channel.endswith("_at") else "granted"
        channel = channel.removesuffix("_at")
        if value is not None:
            entry = row.setdefault("consents", {}).setdefault(channel, {"source": source})
            entry[part] = value.utc.isoformat() if isinstance(value, Moment) else value
    elif isinstance(value, Moment):
        row[name] = value.utc
        row["time_offset" if row.get("_target") == "customer" else f"{name}_offset"] = value.offset
    else:
        row[name] = value


def map_record(plan: StreamPlan, source: str, record_key: str, data: Any) -> Mapped:
    """Map one raw record's payload with its stream's plan.

    Raises:
        FieldError: a field's value is unusable (see :func:`reject` for the rejected row).
        BadRecordError: the record as a whole is unusable (no id, not an object).
    """
    if not isinstance(data, dict):
        raise BadRecordError("the record is not a JSON object", reason_code="not_an_object")
    if not plan.run_fields and plan.fields or plan.id_field and plan.run_id is None:
        plan = _compiled(plan)  # built by hand, not by compile_mapping
    source_id = plan.run_id(data) if plan.run_id is not None else record_key
    if not isinstance(source_id, str) or not source_id:
        raise BadRecordError("the record has no id", reason_code="missing_id")
    row: dict[str, Any] = {"source": source, "source_id": source_id}
    get = data.get
    for key, name, limit, run, put in plan.run_fields:
        if key is not None:  # a plain text field (see _plain_text): the common case, inline
            value = get(key)
            if value is None:
                row[name] = None
                continue
            if type(value) is str and "\x00" not in value:
                text = value.strip()
                if not limit or len(text) <= limit:
                    row[name] = text or None
                    continue
        put(row, run(data), source)
    if plan.target == "customer":
        finish_customer(row, plan.phone_region)
    elif plan.target != "event" and row.get("currency") is None:  # money needs a currency
        row["currency"] = plan.currency
    lines = _map_lines(plan, source_id, data, row.get("currency"))
    if lines and row.get("total") is None and all(x.get("amount") is not None for x in lines):
        row["total"] = _in_range(sum((x["amount"] for x in lines), Decimal(0)), plan, "total")
    return Mapped(plan.table, row, lines)


def _map_lines(
    plan: StreamPlan, order_id: str, data: dict[str, Any], currency: str | None
) -> list[dict[str, Any]]:
    if plan.lines_each is None:
        return []
    try:
        items = _resolve(data, plan.lines_each)
    except BadRecordError as exc:
        raise FieldError(plan.line_fields[0], None, exc) from None
    if plan.line_fields and not plan.run_lines:
        plan = _compiled(plan)
    lines = []
    for number, item in enumerate(items, start=1):
        line: dict[str, Any] = {"line_no": number, "order_source_id": order_id}
        for run, put in plan.run_lines:
            put(line, run(item), "")
        line.setdefault("currency", currency)
        if line.get("amount") is None and line.get("unit_price") is not None:
            quantity = line.get("quantity")
            total = line["unit_price"] * (1 if quantity is None else quantity)
            line["amount"] = _in_range(total - (line.get("discount") or 0), plan, "amount")
        lines.append(line)
    return lines


_CENT = Decimal("0.0001")
_LIMIT = Decimal(10) ** 14


def _in_range(amount: Decimal, plan: StreamPlan, name: str) -> Decimal:
    """A computed amount, rounded to the stored 4 places, within the stored range."""
    if abs(amount) >= _LIMIT:
        raise BadRecordError(
            f"{name} {amount} (computed from the lines) is 10^14 or more",
            reason_code="decimal_out_of_range",
        )
    return amount.quantize(_CENT)


def reject(
    plan: StreamPlan | None, stream: str, record_key: str, payload: Any, error: Exception
) -> Rejection:
    """The one rejected row for a record that could not be mapped.

    A NUL character quoted in the message is written ``\\x00``: PostgreSQL text cannot hold
    it, and one such record must not fail the batch it is in.
    """
    text = _dumps(payload)
    what = f"{plan.target if plan else stream} {record_key}"
    if isinstance(error, FieldError):
        field_plan, bad = error.plan, error.error
        message = _printable(
            f"{what}: {field_plan.name} {bad.message}; "
            f"mapping {field_plan.location} field {field_plan.spec.describe()}"
        )
        return Rejection(stream, record_key, bad.reason_code, message, field_plan.location,
                         text, record_key)  # fmt: skip
    code = error.reason_code if isinstance(error, BadRecordError) else "map_error"
    detail = error.message if isinstance(error, BadRecordError) else str(error)
    where = plan.location if plan else None
    message = _printable(f"{what}: {detail}" + (f"; mapping {where}" if where else ""))
    return Rejection(stream, record_key, code, message, where, text, record_key)


def _printable(message: str) -> str:
    return message.replace("\x00", "\\x00") if "\x00" in message else message


def _dumps(value: Any) -> str:
    """JSON text of any payload (orjson refuses integers beyond 64 bits: json takes them)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS, default=str).decode()
    except TypeError:
        return json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)


def _show(value: Any) -> str:
    text = f'"{value}"' if isinstance(value, str) else _dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."
