"""One HTTP behaviour for every crm-hub target: timeouts, retries, Retry-After, a time budget.

``DestinationHttp.request`` sends one request and keeps resending it while the destination
says "later" (429, 5xx, a timeout or a dropped connection), waiting what ``Retry-After`` asks
or, without it, a capped exponential backoff with jitter. It stops when ``max_attempts`` is
reached or when the next wait would cross the run's time budget. What it returns is the
destination's final word: a 2xx, or a 4xx the caller turns into per-record rejections.

Errors, by what the caller does next (both are singer-sdk's ``FatalAPIError``: stop the run,
nothing after the last confirmed batch is claimed)::

    FatalAPIError
    ├── DestinationAuthError     401/403: fix the credentials or the signing secret
    └── DestinationUnavailable   still 429/5xx/timeouts after the retries or the time budget
"""

from __future__ import annotations

import email.utils
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from singer_sdk.exceptions import FatalAPIError
from tenacity import RetryCallState, Retrying, retry_if_exception_type, wait_random_exponential

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
AUTH_STATUSES = frozenset({401, 403})


class DestinationAuthError(FatalAPIError):
    """The destination refused the credentials (401/403): fix the config, do not retry."""


class DestinationUnavailable(FatalAPIError):
    """The destination kept answering 429/5xx or timing out past the retries or time budget."""


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait for and how often to retry a destination.

    Attributes:
        timeout_seconds: connect/read/write timeout of one request.
        max_attempts: tries per request, the first included.
        backoff_seconds: first backoff step without ``Retry-After`` (doubles, with jitter).
        backoff_max_seconds: cap of one backoff wait.
        time_budget_seconds: total seconds the whole run may take before retries stop.
    """

    timeout_seconds: float = 30.0
    max_attempts: int = 8
    backoff_seconds: float = 0.5
    backoff_max_seconds: float = 60.0
    time_budget_seconds: float = 3600.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RetryPolicy:
        """The policy named by a target's config (the keys of ``settings.HTTP_PROPERTIES``)."""
        defaults = cls()
        return cls(
            timeout_seconds=float(config.get("timeout_seconds", defaults.timeout_seconds)),
            max_attempts=int(config.get("max_attempts", defaults.max_attempts)),
            backoff_seconds=float(config.get("backoff_seconds", defaults.backoff_seconds)),
            backoff_max_seconds=float(
                config.get("backoff_max_seconds", defaults.backoff_max_seconds)
            ),
            time_budget_seconds=float(
                config.get("time_budget_seconds", defaults.time_budget_seconds)
            ),
        )


class _TryAgain(Exception):
    """One attempt the destination asked us to repeat."""

    def __init__(self, reason: str, retry_after: float | None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta seconds or an HTTP date), or ``None``.

    Example: ``retry_after_seconds("3")`` → ``3.0``; a date in the past gives ``0.0``.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC).timestamp()
    return max(0.0, when.timestamp() - current)


class DestinationHttp:
    """A destination's HTTP client with the shared retry behaviour.

    Args:
        base_url: the API root (``https://us21.api.mailchimp.com/3.0``).
        policy: timeouts, retries, time budget; the budget starts now.
        name: destination name for logs and errors.
        auth: httpx auth (Basic for Mailchimp) or ``None``.
        headers: headers sent with every request (``Authorization: Bearer ...``).
        logger: where retries are logged (never with headers or bodies).
        sleep: how to wait (tests of the policy may pass a recorder).
    """

    def __init__(
        self,
        base_url: str,
        policy: RetryPolicy,
        *,
        name: str,
        auth: httpx.Auth | tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        logger: logging.Logger | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.policy = policy
        self.name = name
        self.deadline = time.monotonic() + policy.time_budget_seconds
        self._logger = logger or logging.getLogger(f"connectors.target_{name}")
        self._sleep = sleep
        self._lock = threading.Lock()
        self.retries = 0
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            auth=auth,
            headers=dict(headers or {}),
            timeout=httpx.Timeout(policy.timeout_seconds),
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | Callable[[], Mapping[str, str]] | None = None,
    ) -> httpx.Response:
        """Send one request, retrying 429/5xx/timeouts; return the final 2xx or 4xx answer.

        Args:
            method: HTTP method.
            path: path under the base URL (or an absolute URL).
            json: JSON body.
            content: raw body bytes (a signed webhook sends exactly these).
            headers: extra headers, or a function giving them per attempt (fresh timestamps).

        Returns:
            The response: 2xx, or a 4xx other than 401/403 (the caller's rejection).

        Raises:
            DestinationAuthError: on 401 or 403.
            DestinationUnavailable: when retries or the time budget run out.
        """
        retrying = Retrying(
            retry=retry_if_exception_type(_TryAgain),
            wait=self._wait,
            stop=self._stop,
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            response: httpx.Response = retrying(
                self._attempt, method, path, json=json, content=content, headers=headers
            )
        except _TryAgain as exc:
            raise DestinationUnavailable(
                f"{self.name}: {method} {path} still failing after "
                f"{retrying.statistics.get('attempt_number', 1)} attempts "
                f"(last: {exc.reason}); retries or the time budget "
                f"({self.policy.time_budget_seconds:g} s) ran out"
            ) from None
        if response.status_code in AUTH_STATUSES:
            raise DestinationAuthError(
                f"{self.name}: {method} {path} refused with HTTP {response.status_code}: "
                f"{describe_error(response)}; check the credentials (or signing secret) in the "
                "target config"
            )
        return response

    def _attempt(
        self,
        method: str,
        path: str,
        *,
        json: Any,
        content: bytes | None,
        headers: Mapping[str, str] | Callable[[], Mapping[str, str]] | None,
    ) -> httpx.Response:
        extra = headers() if callable(headers) else headers
        try:
            response = self._client.request(
                method, path, json=json, content=content, headers=dict(extra or {})
            )
        except (httpx.TimeoutException, httpx.TransportError) as exc:
            raise _TryAgain(f"{type(exc).__name__}: {exc}", None) from exc
        if response.status_code in RETRY_STATUSES:
            raise _TryAgain(
                f"HTTP {response.status_code}",
                retry_after_seconds(response.headers.get("Retry-After")),
            )
        return response

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _TryAgain) and exc.retry_after is not None:
            return exc.retry_after
        backoff = wait_random_exponential(
            multiplier=self.policy.backoff_seconds, max=self.policy.backoff_max_seconds
        )
        return float(backoff(state))

    def _stop(self, state: RetryCallState) -> bool:
        if state.attempt_number >= self.policy.max_attempts:
            return True
        return time.monotonic() + state.upcoming_sleep > self.deadline

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        with self._lock:
            self.retries += 1
        self._logger.warning(
            "target.retry destination=%s attempt=%s wait=%.2f reason=%s",
            self.name,
            state.attempt_number,
            state.upcoming_sleep,
            getattr(exc, "reason", exc),
        )


def describe_error(response: httpx.Response) -> str:
    """A short reason from a vendor's error body (RFC 7807, HubSpot, plain text).

    Example: a Mailchimp problem ``{"title": "Invalid Resource", "detail": "x looks fake"}`` →
    ``"Invalid Resource: x looks fake"``.
    """
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:300] or response.reason_phrase
    if isinstance(body, dict):
        title = body.get("title") or body.get("category") or body.get("error")
        detail = body.get("detail") or body.get("message") or body.get("description")
        parts = [str(p) for p in (title, detail) if p]
        if parts:
            return ": ".join(parts)[:500]
    return str(body)[:300]


def http_reason(response: httpx.Response) -> str:
    """A rejection reason: ``HTTP 400 Invalid Resource: x looks fake or invalid``."""
    return f"HTTP {response.status_code} {describe_error(response)}"
