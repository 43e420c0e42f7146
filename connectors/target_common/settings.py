"""Config keys every crm-hub target shares (HTTP behaviour, rejections file, batch size)."""

from __future__ import annotations

from singer_sdk import typing as th


def rejections_property() -> th.Property:  # type: ignore[type-arg]
    """``rejections_path``: where a target appends the records its destination refused."""
    return th.Property(
        "rejections_path",
        th.StringType,
        description=(
            "JSONL file to append one line per rejected record to (destination, stream, "
            "key, reason, status, batch_id, at). Without it rejections are only logged and "
            "reported in STATE."
        ),
    )


def common_properties(batch_default: int, batch_max: int) -> list[th.Property]:  # type: ignore[type-arg]
    """The shared config properties; ``batch_size`` is capped by the destination's limit."""
    return [
        th.Property(
            "batch_size",
            th.IntegerType(minimum=1, maximum=batch_max),
            default=batch_default,
            description=(
                f"Records per batch; one STATE message is written per settled batch "
                f"(at most {batch_max})."
            ),
        ),
        rejections_property(),
        th.Property(
            "timeout_seconds",
            th.NumberType,
            default=30.0,
            description="Timeout of one HTTP request (connect, read, write), seconds.",
        ),
        th.Property(
            "max_attempts",
            th.IntegerType(minimum=1),
            default=8,
            description="Tries per request on 429, 5xx, timeouts and dropped connections.",
        ),
        th.Property(
            "backoff_seconds",
            th.NumberType,
            default=0.5,
            description="First backoff step when the destination sends no Retry-After.",
        ),
        th.Property(
            "backoff_max_seconds",
            th.NumberType,
            default=60.0,
            description="Longest single backoff wait without Retry-After, seconds.",
        ),
        th.Property(
            "time_budget_seconds",
            th.NumberType,
            default=3600.0,
            description=(
                "Total time the run may spend; a retry whose wait would cross it is not made "
                "and the run stops with an error."
            ),
        ),
    ]
