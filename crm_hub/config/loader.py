"""Load hub.yaml: parse with line numbers, substitute ${ENV} references, validate, and report
every problem at once as ``hub.yaml:LINE key.path: what is wrong``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from crm_hub.config.destinations import DESTINATION_TYPES
from crm_hub.config.models import NAME_RULE, SOURCE_TYPES, HubConfig, SourceConfig
from crm_hub.errors import ConfigError
from crm_hub.logging import redact, register_secret

__all__ = ["load_config", "parse_yaml_with_lines", "format_pydantic_errors"]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def parse_yaml_with_lines(path: Path) -> Any:
    """Parse a YAML file keeping line numbers (ruamel round-trip nodes).

    Raises:
        ConfigError: the file is missing, unreadable, or not valid YAML (with its line).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: file not found (create one with `crm-hub init`, or pass --config)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path.name}: cannot read: {exc}") from None
    try:
        return YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else "?"
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{path.name}:{line}: YAML syntax error: {problem}") from None


def line_of(node: Any, loc: tuple[str | int, ...]) -> int | None:
    """The 1-based line of the deepest part of ``loc`` that exists in the parsed YAML."""
    line: int | None = None
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    if line is None and isinstance(node, (CommentedMap, CommentedSeq)):
        line = node.lc.line + 1
    return line


def _where(path: Path, tree: Any, loc: tuple[str | int, ...]) -> str:
    line = line_of(tree, loc)
    dotted = ".".join(str(part) for part in loc)
    return f"{path.name}:{line or 1} {dotted}" if dotted else f"{path.name}:{line or 1}"


def _substitute_env(
    value: Any, loc: tuple[str | int, ...], path: Path, tree: Any, problems: list[str]
) -> Any:
    """Copy the YAML tree to plain Python, replacing ${VAR} and ${VAR:-default}."""
    if isinstance(value, Mapping):
        return {k: _substitute_env(v, (*loc, k), path, tree, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute_env(v, (*loc, i), path, tree, problems) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found is None:
            if default is not None:
                return default
            problems.append(f"{_where(path, tree, loc)}: ${{{name}}} is not set")
            return ""
        register_secret(found)
        return found

    return _ENV_REF.sub(replace, value)


def format_pydantic_errors(
    error: ValidationError,
    model: type[BaseModel],
    path: Path,
    tree: Any,
    prefix: tuple[str | int, ...] = (),
) -> list[str]:
    """Turn pydantic errors into ``file:line key: message`` lines a person can act on."""
    problems = []
    for item in error.errors():
        loc = (*prefix, *item["loc"])
        kind = item["type"]
        if kind == "extra_forbidden":
            allowed = _allowed_keys(model, item["loc"][:-1])
            message = f"unknown key; allowed keys here: {', '.join(allowed)}"
        elif kind == "missing":
            message = "required key is missing"
        elif kind == "string_pattern_mismatch" and "a-z0-9_" in str(item.get("ctx", {})):
            message = f"{NAME_RULE} (got {_short(item['input'])})"
        else:
            message = item["msg"]
            if "input" in item and kind not in ("literal_error",):
                message += f" (got {_short(item['input'])})"
        problems.append(f"{_where(path, tree, loc)}: {message}")
    return problems


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: Any = model
    for part in loc:
        field = current.model_fields.get(part) if isinstance(part, str) else None
        annotation = field.annotation if field else None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            current = annotation
        else:
            break
    return sorted(name for name, f in current.model_fields.items() if not f.exclude)


def _short(value: Any) -> str:
    text = redact(repr(value))
    return text if len(text) <= 60 else text[:57] + "..."


def load_config(path: Path | str) -> HubConfig:
    """Read, substitute and validate hub.yaml.

    Raises:
        ConfigError: with ``problems`` listing every problem found, each with file:line and key.
    """
    path = Path(path)
    tree = parse_yaml_with_lines(path)
    if tree is None:
        tree = CommentedMap()
    if not isinstance(tree, CommentedMap):
        raise ConfigError(f"{path.name}:1: expected a mapping of keys (store, sources, ...)")
    problems: list[str] = []
    data = _substitute_env(tree, (), path, tree, problems)
    raw_sources = data.pop("sources", None) or {}
    sources: dict[str, SourceConfig] = {}
    if not isinstance(raw_sources, dict):
        problems.append(f"{_where(path, tree, ('sources',))}: expected a mapping of named sources")
        raw_sources = {}
    for name, raw in raw_sources.items():
        source = _validate_source(str(name), raw, path, tree, problems)
        if source is not None:
            sources[str(name)] = source
    destinations = _validate_destinations(data.pop("destinations", None), path, tree, problems)
    data["base_dir"] = path.resolve().parent
    try:
        config = HubConfig.model_validate(
            {**data, "sources": sources, "destinations": destinations}
        )
    except ValidationError as exc:
        problems.extend(format_pydantic_errors(exc, HubConfig, path, tree))
        config = None
    if config is not None:
        problems.extend(_cross_checks(config, set(raw_sources), path, tree))
    if problems:
        problems.sort(key=_line_number)
        summary = f"{path.name}: {len(problems)} problem(s) in the configuration"
        raise ConfigError(summary + "\n  " + "\n  ".join(problems), problems=problems)
    assert config is not None
    return config.model_copy(update={"store": _absolute_store_url(config.store, config.base_dir)})


def _line_number(problem: str) -> int:
    match = re.match(r"[^:]*:(\d+)", problem)
    return int(match.group(1)) if match else 0


def _validate_source(
    name: str, raw: Any, path: Path, tree: Any, problems: list[str]
) -> SourceConfig | None:
    loc: tuple[str | int, ...] = ("sources", name)
    if not isinstance(raw, dict):
        problems.append(f"{_where(path, tree, loc)}: expected a mapping (type, path, ...)")
        return None
    kind = raw.get("type")
    model = SOURCE_TYPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        allowed = ", ".join(sorted(SOURCE_TYPES))
        problems.append(
            f"{_where(path, tree, (*loc, 'type'))}: unknown source type {kind!r}; "
            f"allowed: {allowed}"
        )
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems.extend(format_pydantic_errors(exc, model, path, tree, loc))
        return None


def _validate_destinations(
    raw_all: Any, path: Path, tree: Any, problems: list[str]
) -> dict[str, Any]:
    """Validate each destination by its ``type`` (errors with file:line, like sources)."""
    if raw_all is None:
        return {}
    if not isinstance(raw_all, dict):
        problems.append(f"{_where(path, tree, ('destinations',))}: expected a mapping of names")
        return {}
    found: dict[str, Any] = {}
    for name, raw in raw_all.items():
        loc: tuple[str | int, ...] = ("destinations", name)
        kind = raw.get("type") if isinstance(raw, dict) else None
        model = DESTINATION_TYPES.get(kind) if isinstance(kind, str) else None
        if model is None:
            allowed = ", ".join(sorted(DESTINATION_TYPES))
            problems.append(
                f"{_where(path, tree, (*loc, 'type'))}: unknown destination type {kind!r}; "
                f"allowed: {allowed}"
            )
            continue
        try:
            found[str(name)] = model.model_validate(raw)
        except ValidationError as exc:
            problems.extend(format_pydantic_errors(exc, model, path, tree, loc))
    return found


def _cross_checks(config: HubConfig, source_names: set[str], path: Path, tree: Any) -> list[str]:
    problems = []
    for name, schedule in config.schedules.items():
        for i, source in enumerate(schedule.sources):
            if source not in source_names:
                where = _where(path, tree, ("schedules", name, "sources", i))
                problems.append(f"{where}: no source named {source!r}")
    return problems


def _absolute_store_url(url: str, base_dir: Path) -> str:
    """Make a relative SQLite path relative to hub.yaml's folder, not the caller's cwd."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and ":memory:" not in url:
        return prefix + str(base_dir / url[len(prefix) :])
    return url
