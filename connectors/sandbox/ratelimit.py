"""Rate limiting: a token bucket per vendor and a cap on requests in flight."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from connectors.sandbox.config import RateLimit


class TokenBucket:
    """``burst`` tokens, refilled continuously at ``per_second``; each request takes one.

    Args:
        per_second: refill rate.
        burst: bucket size (requests allowed at once after a pause).
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(
        self, per_second: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_second = per_second
        self.burst = max(1, burst)
        self._clock = clock
        self._tokens = float(self.burst)
        self._stamp = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take one token; returns 0 on success, else the seconds until one is available."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.per_second)
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return 0.0
            return (1 - self._tokens) / self.per_second


class InFlight:
    """Counts requests being served; ``enter`` refuses beyond ``limit``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._count = 0
        self._lock = threading.Lock()

    def enter(self) -> bool:
        """Admit one more request if under the limit."""
        with self._lock:
            if self._count >= self.limit:
                return False
            self._count += 1
            return True

    def leave(self) -> None:
        """A request finished."""
        with self._lock:
            self._count = max(0, self._count - 1)


class Limiter:
    """The limits of one vendor (bucket and/or concurrency), possibly none."""

    def __init__(self, limit: RateLimit | None) -> None:
        self.bucket = (
            TokenBucket(limit.per_second, limit.burst)
            if limit is not None and limit.per_second
            else None
        )
        self.in_flight = (
            InFlight(limit.concurrency) if limit is not None and limit.concurrency else None
        )

    def take(self) -> float:
        """Seconds to wait (0: go ahead) according to the bucket."""
        return self.bucket.take() if self.bucket is not None else 0.0
