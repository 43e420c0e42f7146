"""Structured logging: key=value (or JSON) lines on stderr, each with run id, stage and source.

Secrets are redacted twice: values loaded from ``${ENV}`` references and every ``SecretStr`` are
registered with :func:`register_secret`, and the formatter replaces them in every line.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from typing import Any

import orjson

__all__ = ["bind", "configure_logging", "get_logger", "register_secret"]

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("crm_hub_log_context")
_secrets: set[str] = set()
_REDACTED = "***"


def register_secret(value: str) -> None:
    """Never let ``value`` appear in a log line (short values would redact too much: skipped)."""
    if value and len(value) >= 4:
        _secrets.add(value)


def redact(text: str) -> str:
    """Replace every registered secret in ``text``."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, _REDACTED)
    return text


def bind(**fields: Any) -> contextvars.Token[dict[str, Any]]:
    """Add fields (run_id, stage, source) to every log line of this context."""
    merged = {**_context.get({}), **fields}
    return _context.set(merged)


class _Formatter(logging.Formatter):
    def __init__(self, json_lines: bool) -> None:
        super().__init__()
        self.json_lines = json_lines

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            **_context.get({}),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            fields["exc"] = self.formatException(record.exc_info)
        if self.json_lines:
            line = orjson.dumps(fields, default=str).decode()
        else:
            line = " ".join(f"{key}={_quote(value)}" for key, value in fields.items())
        return redact(line)


def _quote(value: Any) -> str:
    text = str(value)
    return repr(text) if (" " in text or "=" in text or not text) else text


class _FieldsAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """``log.info("event", rows=3)`` puts ``rows=3`` on the line."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        fields = {k: kwargs.pop(k) for k in list(kwargs) if k not in _LOGGING_KWARGS}
        kwargs.setdefault("extra", {})["fields"] = fields
        return msg, kwargs


_LOGGING_KWARGS = {"exc_info", "stack_info", "stacklevel", "extra"}


def get_logger(name: str) -> _FieldsAdapter:
    """A logger whose keyword arguments become key=value fields."""
    return _FieldsAdapter(logging.getLogger(name), {})


def configure_logging(level: str = "INFO", json_lines: bool = False) -> None:
    """Send crm-hub's logs to stderr in the structured format (idempotent)."""
    root = logging.getLogger("crm_hub")
    root.setLevel(level.upper())
    root.propagate = False
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(json_lines))
    root.addHandler(handler)
