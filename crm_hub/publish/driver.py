"""What every destination driver does, and the name-keyed registry of drivers by ``type:``.

A driver gets batches of :class:`~crm_hub.publish.payload.Outgoing` records and, as each batch
settles at the destination, calls ``settle`` with what landed and what was refused (the stage
commits that at once). ``recover`` settles what a killed earlier push left behind.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from crm_hub.publish.payload import Outgoing

if TYPE_CHECKING:
    from crm_hub.store.engine import Store

__all__ = [
    "DRIVERS",
    "Driver",
    "DriverContext",
    "Outcome",
    "Settle",
    "Throttle",
    "register_driver",
]


@dataclass(slots=True)
class Outcome:
    """One settled batch: records that landed, and records refused with the reason."""

    confirmed: list[Outgoing] = field(default_factory=list)
    rejected: list[tuple[Outgoing, str]] = field(default_factory=list)


Settle = Callable[[Outcome], None]


@dataclass(slots=True, frozen=True)
class DriverContext:
    """What a driver factory is given."""

    name: str
    config: Any  # one of crm_hub.config.destinations' models
    base_dir: Path
    run_id: str
    store: Store  # Singer targets keep their push in flight there


class Driver(Protocol):
    """A destination driver (see the module docstring)."""

    def recover(self, settle: Settle) -> int:
        """Settle what an interrupted earlier push left behind; returns records settled."""

    def send(self, batches: Iterable[list[Outgoing]], settle: Settle) -> None:
        """Send every batch, calling ``settle`` as each one lands.

        Raises:
            CrmHubError: the destination could not be reached or refused the credentials; what
                was settled before stays settled.
        """


DRIVERS: dict[str, Callable[[DriverContext], Driver]] = {}


def register_driver(kind: str, factory: Callable[[DriverContext], Driver]) -> None:
    """Make destinations of ``type: kind`` use ``factory``."""
    DRIVERS[kind] = factory


class Throttle:
    """At most ``rate`` records per second (None: no limit)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._next = time.monotonic()

    def wait(self, count: int = 1) -> None:
        """Sleep until ``count`` more records may go."""
        if not self.rate:
            return
        now = time.monotonic()
        self._next = max(self._next, now) + count / self.rate
        delay = self._next - now - count / self.rate
        if delay > 0:
            time.sleep(delay)
