"""Fault injection: what can go wrong with a vendor API, on demand.

A ``Fault`` applies to the next ``count`` requests of a vendor (``"*"``: any vendor) whose path
contains ``path``, after letting ``after`` matching requests through. Kinds:

==================  ===========================================================================
``429``             throttled, in the vendor's words (``Retry-After`` where the vendor sends it,
                    or when ``retry_after`` is given)
``5xx``             server error ``status`` (default 503) with the vendor's error body
``stall``           wait ``seconds`` (default 30) before answering normally: a client timeout
``truncate``        the normal answer cut in half: invalid JSON with a correct Content-Length
``duplicate_page``  the previous answer of the same endpoint again (a page seen twice)
``empty_page``      a page with no records but a cursor/offset that resumes where it was
``expire_token``    the access token expires now: the next call gets the vendor's 401 (refresh
                    works for OAuth tokens; the static token fails ``count`` times, then heals)
==================  ===========================================================================

One request can also carry its own fault: header ``X-Sandbox-Fault: stall;seconds=2``.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = ("429", "5xx", "stall", "truncate", "duplicate_page", "empty_page", "expire_token")
_IDS = itertools.count(1)


class FaultError(ValueError):
    """A fault description is invalid (unknown kind, bad number)."""


@dataclass
class Fault:
    """One planned failure.

    Attributes:
        vendor: vendor name or ``"*"``.
        kind: one of ``KINDS``.
        count: how many requests it hits.
        path: only requests whose vendor-relative path contains this text.
        after: let this many matching requests through first (fail mid-sync).
        status: HTTP status for ``5xx``.
        seconds: delay for ``stall``.
        retry_after: ``Retry-After`` seconds for ``429`` (default: the vendor's habit).
        id: assigned on creation.
    """

    vendor: str
    kind: str
    count: int = 1
    path: str | None = None
    after: int = 0
    status: int = 503
    seconds: float = 30.0
    retry_after: float | None = None
    id: int = field(default_factory=lambda: next(_IDS))

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise FaultError(f"unknown fault kind {self.kind!r}; kinds: {', '.join(KINDS)}")
        if self.count < 1 or self.after < 0:
            raise FaultError(
                f"count must be >= 1 and after >= 0, got count={self.count} after={self.after}"
            )
        if self.kind == "5xx" and not 500 <= self.status <= 599:
            raise FaultError(f"status for a 5xx fault must be 500-599, got {self.status}")
        if self.seconds < 0:
            raise FaultError(f"seconds must be >= 0, got {self.seconds}")

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        """Build a fault from a control-endpoint body.

        Raises:
            FaultError: on unknown keys or bad values.
        """
        allowed = {"vendor", "kind", "count", "path", "after", "status", "seconds", "retry_after"}
        unknown = set(data) - allowed
        if unknown:
            raise FaultError(f"unknown fault keys {sorted(unknown)}; allowed: {sorted(allowed)}")
        if "vendor" not in data or "kind" not in data:
            raise FaultError("a fault needs 'vendor' and 'kind'")
        try:
            return cls(
                vendor=str(data["vendor"]),
                kind=str(data["kind"]),
                count=int(data.get("count", 1)),
                path=data.get("path"),
                after=int(data.get("after", 0)),
                status=int(data.get("status", 503)),
                seconds=float(data.get("seconds", 30.0)),
                retry_after=None if data.get("retry_after") is None else float(data["retry_after"]),
            )
        except (TypeError, ValueError) as exc:
            raise FaultError(f"bad fault value: {exc}") from None

    @classmethod
    def from_header(cls, vendor: str, value: str) -> Fault:
        """Parse ``X-Sandbox-Fault: <kind>[;key=value...]`` for a single request."""
        kind, *options = [part.strip() for part in value.split(";")]
        data: dict[str, Any] = {"vendor": vendor, "kind": kind}
        for option in options:
            key, _, raw = option.partition("=")
            data[key.strip()] = raw.strip()
        data.pop("count", None)
        return cls.from_json(data)


class FaultPlan:
    """The faults waiting to happen; thread-safe."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> Fault:
        """Plan a fault; returns it (with its id)."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, vendor: str, path: str) -> Fault | None:
        """The fault that hits this request, if any (consumes one of its ``count``)."""
        with self._lock:
            for fault in self._faults:
                if fault.vendor not in ("*", vendor):
                    continue
                if fault.path and fault.path not in path:
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def give_back(self, fault: Fault) -> None:
        """Return an unused hit (e.g. ``duplicate_page`` with no previous page yet)."""
        with self._lock:
            if fault in self._faults:
                fault.count += 1
            else:
                fault.count = 1
                self._faults.insert(0, fault)

    def active(self) -> list[Fault]:
        """Faults still pending."""
        with self._lock:
            return list(self._faults)

    def clear(self, vendor: str | None = None) -> int:
        """Drop pending faults (of one vendor, or all); returns how many."""
        with self._lock:
            before = len(self._faults)
            self._faults = [f for f in self._faults if vendor is not None and f.vendor != vendor]
            return before - len(self._faults)
