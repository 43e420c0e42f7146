"""Errors, branched by what the caller should do next.

```
CrmHubError                 root: anything crm-hub raises on purpose
├── ConfigError             fix the configuration; never retry       (exit code 2)
├── StoreError              the store is unreachable or inconsistent  (exit code 1)
├── BusyError               someone else holds the lease; wait or retry later (exit code 1)
├── RetryableSourceError    the source failed for now; back off and retry (exit code 1)
├── FatalSourceError        stop this connector; a person must act     (exit code 1)
└── BadRecordError          reject this record and go on (never stops a run)
```

Every error carries a message a person can act on (the object, the bad value, the fix) and an
optional ``detail`` for internals (a traceback excerpt, a vendor response) kept apart from the
message. Errors pickle, so Prefect and multiprocessing can ship them between processes.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "BadRecordError",
    "BusyError",
    "ConfigError",
    "CrmHubError",
    "FatalSourceError",
    "RetryableSourceError",
    "StoreError",
]


class CrmHubError(Exception):
    """Root of every error crm-hub raises on purpose.

    Args:
        message: what went wrong and what to do, for a person.
        detail: internal detail (vendor response, exception text) for logs, never secrets.
    """

    exit_code = 1

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self.__dict__))

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type[CrmHubError], message: str, state: dict[str, Any]) -> CrmHubError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class ConfigError(CrmHubError):
    """The configuration (hub.yaml, a mapping, a setting) is wrong: fix it, never retry.

    ``problems`` lists every problem found, each already formatted as ``file:line key: message``.
    """

    exit_code = 2

    def __init__(
        self, message: str, *, problems: list[str] | None = None, detail: str | None = None
    ) -> None:
        super().__init__(message, detail=detail)
        self.problems = problems or [message]


class StoreError(CrmHubError):
    """The store cannot be reached, migrated or read."""


class BusyError(CrmHubError):
    """Another run holds the lease on this work; wait for it or retry later."""


class RetryableSourceError(CrmHubError):
    """The source failed in a way that may pass: back off and retry."""


class FatalSourceError(CrmHubError):
    """The source cannot go on (bad credentials, missing file): stop this connector."""


class BadRecordError(CrmHubError):
    """One record is unusable: reject it with a reason and go on with the rest.

    Args:
        message: why the record is rejected, naming the field and value.
        reason_code: short stable code, e.g. ``missing_primary_key``.
        location: where the record came from, e.g. ``data/customers.csv:17``.
    """

    def __init__(
        self,
        message: str,
        *,
        reason_code: str,
        location: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message, detail=detail)
        self.reason_code = reason_code
        self.location = location
