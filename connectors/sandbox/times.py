"""Time in the sandbox: a monotonic world clock and each vendor's way of writing a timestamp.

Every timestamp is kept as integer milliseconds since the Unix epoch (UTC) and only formatted on
the way out, each vendor in its own style.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from functools import lru_cache

DAY_MS = 86_400_000

# Seeded data ends here (fixed so that a seed always gives the same world).
DEFAULT_ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)


class WorldClock:
    """Hands out fresh, strictly increasing timestamps for changes made at run time.

    A change is stamped with the wall clock, but never earlier than anything already in the world,
    so an incremental sync always sees it as new even when the seeded data lies in the future.

    Args:
        floor_ms: the newest timestamp already in the world.
        wall: a callable returning wall-clock milliseconds (injectable for tests).
    """

    def __init__(self, floor_ms: int, wall: Callable[[], int] | None = None) -> None:
        self._last = floor_ms
        self._wall = wall or (lambda: int(time.time() * 1000))
        self._lock = threading.Lock()

    def now_ms(self) -> int:
        """Return a timestamp later than every timestamp handed out or seeded before."""
        with self._lock:
            self._last = max(self._wall(), self._last + 1)
            return self._last

    def next_second_ms(self) -> int:
        """Return a timestamp in a later whole second than every one handed out or seeded.

        Vendors whose change cursors have one-second resolution (Mailchimp's ``last_changed``)
        would otherwise show a change made in the same second as the newest seeded record as
        not newer than a cursor saved at that second.
        """
        with self._lock:
            self._last = max(self._wall(), (self._last // 1000 + 1) * 1000)
            return self._last

    def peek_ms(self) -> int:
        """Return the current time without reserving it (wall clock, never before the floor)."""
        with self._lock:
            return max(self._wall(), self._last)


def to_datetime(ms: int, tz: timezone = UTC) -> datetime:
    """Convert epoch milliseconds to an aware datetime in ``tz``."""
    return datetime.fromtimestamp(ms / 1000, tz)


@lru_cache(maxsize=4096)
def _utc_day(day: int) -> str:
    return (date(1970, 1, 1) + timedelta(days=day)).isoformat()


def _utc_parts(ms: int) -> tuple[str, int, int, int]:
    """(``YYYY-MM-DD``, hour, minute, second) in UTC, without building a datetime (hot path)."""
    day, in_day = divmod(ms, DAY_MS)
    hour, rest = divmod(in_day // 1000, 3600)
    minute, second = divmod(rest, 60)
    return _utc_day(day), hour, minute, second


def rfc3339_ms(ms: int) -> str:
    """Square / HubSpot style: ``2026-03-04T09:15:22.123Z``."""
    day, hour, minute, second = _utc_parts(ms)
    return f"{day}T{hour:02d}:{minute:02d}:{second:02d}.{ms % 1000:03d}Z"


def iso_seconds_z(ms: int) -> str:
    """Typeform style: ``2026-03-04T09:15:22Z``."""
    day, hour, minute, second = _utc_parts(ms)
    return f"{day}T{hour:02d}:{minute:02d}:{second:02d}Z"


def iso_seconds_offset(ms: int) -> str:
    """Mailchimp style: ``2026-03-04T09:15:22+00:00``."""
    day, hour, minute, second = _utc_parts(ms)
    return f"{day}T{hour:02d}:{minute:02d}:{second:02d}+00:00"


def _nth_sunday(year: int, month: int, n: int) -> date:
    first = date(year, month, 1)
    offset = (6 - first.weekday()) % 7
    return first + timedelta(days=offset + 7 * (n - 1))


def pacific_offset_hours(ms: int) -> int:
    """UTC offset of US Pacific time at an instant (-7 in daylight saving time, else -8).

    DST runs from the second Sunday of March 02:00 local to the first Sunday of November 02:00
    local; computed here rather than read from the system's tz database so results never depend
    on the machine.
    """
    utc = to_datetime(ms)
    start = datetime.combine(_nth_sunday(utc.year, 3, 2), datetime.min.time(), UTC)
    end = datetime.combine(_nth_sunday(utc.year, 11, 1), datetime.min.time(), UTC)
    # 02:00 PST = 10:00 UTC; 02:00 PDT = 09:00 UTC.
    in_dst = start + timedelta(hours=10) <= utc < end + timedelta(hours=9)
    return -7 if in_dst else -8


def quickbooks_time(ms: int) -> str:
    """QuickBooks style: local (US Pacific) time with its offset, ``2026-03-04T01:15:22-08:00``."""
    hours = pacific_offset_hours(ms)
    local = to_datetime(ms, timezone(timedelta(hours=hours)))
    return local.strftime("%Y-%m-%dT%H:%M:%S") + f"{hours:+03d}:00"


def parse_instant(text: str, *, naive_tz: timezone = UTC) -> int:
    """Parse an ISO-8601 / RFC 3339 timestamp, a date, or unix seconds into epoch milliseconds.

    Args:
        text: ``2026-01-01T00:00:00Z``, ``2026-01-01T00:00:00-08:00``, ``2026-01-01`` or
            ``1767225600``.
        naive_tz: zone assumed when the text carries none.

    Returns:
        Milliseconds since the epoch.

    Raises:
        ValueError: when the text is none of those.
    """
    text = text.strip()
    if text.isdigit():
        return int(text) * 1000
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=naive_tz)
    return int(parsed.timestamp() * 1000)


def pacific_zone_for(ms: int) -> timezone:
    """Fixed-offset zone of US Pacific time at an instant (for zone-less QuickBooks times)."""
    return timezone(timedelta(hours=pacific_offset_hours(ms)))
