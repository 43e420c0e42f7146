"""Mapping files (``mappings/<source>.yaml``): strict pydantic models, loaded with line numbers.

```yaml
version: 1
phone_region: GB          # numbers without a country code
timezone: Europe/London   # times written without an offset
streams:
  customers:              # the raw stream
    target: customer      # customer, order, invoice, payment, event
    id: id                # the record's id in the source (default: the raw record key)
    fields:
      first_name: first_name
      email: {path: email, transforms: [trim, lower]}
      consent.email: {path: status, transforms: [{lookup: {table: {subscribed: true}}}]}
```

Every problem is reported at once as ``mappings/x.yaml:LINE key.path: what is wrong``, with the
allowed keys, transforms or fields.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from ruamel.yaml.comments import CommentedMap

from crm_hub.config.loader import format_pydantic_errors, line_of, parse_yaml_with_lines
from crm_hub.errors import ConfigError
from crm_hub.mapping.fields import LINE_FIELDS, allowed_fields, is_allowed_field
from crm_hub.mapping.transforms import TRANSFORMS

__all__ = ["FieldSpec", "LoadedMapping", "MappingSpec", "StreamSpec", "load_mapping"]

_SEGMENT = r"[^.\[\]\s][^.\[\]]*(\[\])?"
PATH_RULE = re.compile(rf"{_SEGMENT}(\.{_SEGMENT})*")
PATH_HELP = "a path is keys joined by dots, [] after a list: e.g. address.city, lines[].price"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_path(value: str) -> str:
    if not PATH_RULE.fullmatch(value):
        raise ValueError(f"bad path {value!r}: {PATH_HELP}")
    return value


class TransformCall(_Strict):
    """One step: a registered transform's name and its options."""

    name: str
    args: Any = None

    @classmethod
    def parse(cls, raw: Any) -> TransformCall:
        """Read ``name`` or ``{name: {option: value}}``; unknown names list the allowed ones."""
        if isinstance(raw, str):
            name, options = raw, None
        elif isinstance(raw, dict) and len(raw) == 1:
            name, options = next(iter(raw.items()))
        else:
            raise ValueError("a transform is a name, or {name: {options}}")
        transform = TRANSFORMS.get(str(name))
        if transform is None:
            raise ValueError(
                f"unknown transform {name!r}; allowed: {', '.join(sorted(TRANSFORMS))}"
            )
        if transform.args is None:
            if options not in (None, {}):
                raise ValueError(f"transform {name} takes no options")
            return cls(name=str(name))
        if options is not None and not isinstance(options, dict):
            raise ValueError(f"options of {name} are a mapping, e.g. {{{name}: {{...}}}}")
        try:
            return cls(name=str(name), args=transform.args.model_validate(options or {}))
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
            )
            allowed = ", ".join(transform.args.model_fields)
            raise ValueError(f"{name}: {problems} (options: {allowed})") from None


class FieldSpec(_Strict):
    """Where a canonical field's value comes from, and the transforms applied to it."""

    path: str | None = Field(None, description="Dotted path in the record, e.g. address.city.")
    paths: list[str] | None = Field(
        None, description="Several paths, for concat, coalesce or first_non_empty."
    )
    value: Any = Field(None, description="A constant instead of a path.")
    transforms: list[TransformCall] = Field(
        default_factory=list, description="Steps applied in order: names or {name: {options}}."
    )
    required: bool = Field(False, description="Reject the record when the result is empty.")

    @field_validator("path")
    @classmethod
    def _path(cls, value: str | None) -> str | None:
        return None if value is None else _check_path(value)

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [_check_path(v) for v in value]

    @field_validator("transforms", mode="before")
    @classmethod
    def _transforms(cls, value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError("transforms is a list, e.g. [trim, lower]")
        return [TransformCall.parse(v) for v in value]

    @classmethod
    def coerce(cls, raw: Any) -> Any:
        """A bare string is a path."""
        return {"path": raw} if isinstance(raw, str) else raw

    def describe(self) -> str:
        """The source side, for messages: the path(s) or the constant."""
        if self.path:
            return self.path
        if self.paths:
            return ", ".join(self.paths)
        return f"value {self.value!r}"


def _field_map(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: FieldSpec.coerce(v) for k, v in value.items()}
    return value


class LinesSpec(_Strict):
    """Order lines: a list in the record and the fields of each line (paths relative to it)."""

    each: str = Field(description="Path of the list of lines, e.g. line_items[].")
    fields: dict[str, FieldSpec] = Field(description="Line field → source path in the line.")

    _fields = field_validator("fields", mode="before")(lambda cls, v: _field_map(v))

    @field_validator("each")
    @classmethod
    def _each(cls, value: str) -> str:
        return _check_path(value)


class StreamSpec(_Strict):
    """How one raw stream becomes rows of one canonical table."""

    target: Literal["customer", "order", "invoice", "payment", "event"] = Field(
        description="Canonical table: customer, order, invoice, payment or event."
    )
    id: FieldSpec | None = Field(
        None, description="The record's id in the source (default: the raw record key)."
    )
    fields: dict[str, FieldSpec] = Field(
        default_factory=dict, description="Canonical field → source path, constant, transforms."
    )
    lines: LinesSpec | None = Field(None, description="Order lines (target order only).")

    _fields = field_validator("fields", mode="before")(lambda cls, v: _field_map(v))
    _id = field_validator("id", mode="before")(lambda cls, v: FieldSpec.coerce(v))


class MappingSpec(_Strict):
    """A whole mapping file."""

    version: Literal[1] = Field(description="Schema version of the mapping file; always 1.")
    phone_region: str = Field(
        "GB", description="ISO region for phone numbers written without a country code."
    )
    timezone: str = Field("UTC", description="IANA zone for times written without an offset.")
    currency: str | None = Field(
        None, description="Currency of amounts when the record does not say (ISO 4217)."
    )
    streams: dict[str, StreamSpec] = Field(description="Raw stream name → how to map it.")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. UTC, Europe/London)") from None
        return value


@dataclass(frozen=True, slots=True)
class LoadedMapping:
    """A validated mapping with where each field was written, for messages."""

    spec: MappingSpec
    display: str  # e.g. mappings/pos_export.yaml
    digest: str  # blake2b-128 of the file: a change re-maps the source
    lines: dict[tuple[str | int, ...], int] = field(default_factory=dict)

    def where(self, *loc: str | int) -> str:
        """``file:line`` of a key, e.g. ``where("streams", "orders", "fields", "total")``."""
        return f"{self.display}:{self.lines.get(tuple(loc), 1)}"


def load_mapping(path: Path, display: str | None = None) -> LoadedMapping:
    """Read and validate a mapping file.

    Args:
        path: the file.
        display: how messages name it (default: the file name), e.g. ``mappings/pos.yaml``.

    Raises:
        ConfigError: listing every problem as ``file:line key: message``.
    """
    shown = display or path.name
    tree = parse_yaml_with_lines(path)
    if not isinstance(tree, CommentedMap):
        raise ConfigError(f"{shown}:1: expected a mapping with version and streams")
    try:
        spec = MappingSpec.model_validate(_plain(tree))
    except ValidationError as exc:
        problems = [
            _rename(_fix_allowed(problem, item["loc"], item["type"]), path.name, shown)
            for problem, item in zip(
                format_pydantic_errors(exc, MappingSpec, path, tree), exc.errors(), strict=True
            )
        ]
        raise ConfigError(_summary(shown, problems), problems=problems) from None
    problems = _cross_checks(spec, tree, shown)
    if problems:
        raise ConfigError(_summary(shown, problems), problems=problems)
    digest = hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()
    return LoadedMapping(spec, shown, digest, _field_lines(spec, tree))


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def _rename(problem: str, name: str, shown: str) -> str:
    return shown + problem[len(name) :] if problem.startswith(name + ":") else problem


def _fix_allowed(problem: str, loc: tuple[str | int, ...], kind: str) -> str:
    """The loader lists the top level's keys; list the keys of the model the key is in."""
    if kind != "extra_forbidden":
        return problem
    model: Any = MappingSpec
    skip = 0
    for part in loc[:-1]:
        if skip:
            skip -= 1
            continue
        field_info = model.model_fields.get(part) if isinstance(part, str) else None
        if field_info is None:
            break
        annotation, skip = _unwrap(field_info.annotation)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            break
        model = annotation
    head, _, _ = problem.partition("allowed keys here: ")
    return head + "allowed keys here: " + ", ".join(sorted(model.model_fields))


def _unwrap(annotation: Any) -> tuple[Any, int]:
    """``X | None`` → X; ``dict[str, X]``/``list[X]`` → X and one key or index to skip."""
    args = [a for a in get_args(annotation) if a is not type(None)]
    origin = get_origin(annotation)
    if origin in (dict, list):
        return args[-1], 1
    if len(args) == 1:
        return _unwrap(args[0])
    return annotation, 0


def _summary(shown: str, problems: list[str]) -> str:
    return f"{shown}: {len(problems)} problem(s) in the mapping\n  " + "\n  ".join(problems)


def _cross_checks(spec: MappingSpec, tree: Any, shown: str) -> list[str]:
    problems = []

    def where(*loc: str | int) -> str:
        return f"{shown}:{line_of(tree, loc) or 1} {'.'.join(str(p) for p in loc)}"

    for name, stream in spec.streams.items():
        for key in stream.fields:
            if not is_allowed_field(stream.target, key):
                allowed = ", ".join(allowed_fields(stream.target))
                problems.append(
                    f"{where('streams', name, 'fields', key)}: unknown {stream.target} field; "
                    f"allowed: {allowed}"
                )
        if stream.lines is not None:
            if stream.target != "order":
                problems.append(f"{where('streams', name, 'lines')}: only orders have lines")
            for key in stream.lines.fields:
                if key not in LINE_FIELDS and not key.startswith("attributes."):
                    allowed = ", ".join([*sorted(LINE_FIELDS), "attributes.<name>"])
                    problems.append(
                        f"{where('streams', name, 'lines', 'fields', key)}: unknown line field; "
                        f"allowed: {allowed}"
                    )
            if "[]" not in stream.lines.each:
                problems.append(
                    f"{where('streams', name, 'lines', 'each')}: must name a list, ending in []"
                )
    return problems


def _field_lines(spec: MappingSpec, tree: Any) -> dict[tuple[str | int, ...], int]:
    lines: dict[tuple[str | int, ...], int] = {}
    for name, stream in spec.streams.items():
        keys: list[tuple[str | int, ...]] = [("streams", name), ("streams", name, "id")]
        keys += [("streams", name, "fields", k) for k in stream.fields]
        if stream.lines is not None:
            keys += [("streams", name, "lines", "fields", k) for k in stream.lines.fields]
        for loc in keys:
            lines[loc] = line_of(tree, loc) or 1
    return lines
