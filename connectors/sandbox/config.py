"""Sandbox configuration: seed and size, credentials, rate limits, page limits, token lifetimes.

Defaults are the documented test credentials and the vendors' published limits (see
``connectors/sandbox/README.md``). Everything is a plain frozen dataclass so tests can build
variants with ``dataclasses.replace``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from connectors.sandbox.times import DEFAULT_ANCHOR

VENDORS = ("square", "mailchimp", "typeform", "quickbooks", "hubspot")


@dataclass(frozen=True)
class Credentials:
    """Test credentials of one vendor.

    Attributes:
        token: the static bearer token (Mailchimp: the API key, used as Basic-auth password).
        client_id: OAuth client id for the token endpoint.
        client_secret: OAuth client secret.
        refresh_token: the first valid refresh token.
    """

    token: str
    client_id: str
    client_secret: str
    refresh_token: str

    def __repr__(self) -> str:
        return f"Credentials(client_id={self.client_id!r}, token/secret/refresh_token=***)"


def default_credentials() -> dict[str, Credentials]:
    """The fixed, documented test credentials."""
    return {
        "square": Credentials(
            "sandbox-square-token",
            "sandbox-square-app",
            "sandbox-square-secret",
            "sandbox-square-refresh",
        ),
        "mailchimp": Credentials(
            "sandbox-mailchimp-key-us21", "sandbox-mailchimp-app", "sandbox-mailchimp-secret", ""
        ),
        "typeform": Credentials(
            "sandbox-typeform-token",
            "sandbox-typeform-app",
            "sandbox-typeform-secret",
            "sandbox-typeform-refresh",
        ),
        "quickbooks": Credentials(
            "sandbox-quickbooks-token",
            "sandbox-quickbooks-app",
            "sandbox-quickbooks-secret",
            "sandbox-quickbooks-refresh",
        ),
        "hubspot": Credentials(
            "sandbox-hubspot-token",
            "sandbox-hubspot-app",
            "sandbox-hubspot-secret",
            "sandbox-hubspot-refresh",
        ),
    }


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: ``burst`` requests at once, refilled at ``per_second``.

    ``concurrency`` caps requests in flight at the same time (Mailchimp's 10 connections).
    """

    per_second: float | None = None
    burst: int = 1
    concurrency: int | None = None


def default_rate_limits() -> dict[str, RateLimit]:
    """Published (or, for Square, plausible) limits per vendor; ``hubspot.search`` is separate."""
    return {
        "square": RateLimit(per_second=20.0, burst=40),
        "mailchimp": RateLimit(concurrency=10),
        "typeform": RateLimit(per_second=2.0, burst=2),
        "quickbooks": RateLimit(per_second=500 / 60, burst=40, concurrency=10),
        "hubspot": RateLimit(per_second=10.0, burst=100),
        "hubspot.search": RateLimit(per_second=5.0, burst=5),
    }


@dataclass(frozen=True)
class PageLimits:
    """Largest page or batch each endpoint accepts (the vendors' documented limits)."""

    square_customers: int = 100
    square_orders: int = 1000
    mailchimp_count: int = 1000
    mailchimp_batch: int = 500
    typeform_page_size: int = 1000
    quickbooks_max_results: int = 1000
    quickbooks_cdc_objects: int = 1000
    quickbooks_cdc_days: int = 30
    hubspot_list: int = 100
    hubspot_search: int = 200
    hubspot_search_total: int = 10_000
    hubspot_batch: int = 100


def default_token_ttl() -> dict[str, float]:
    """Lifetime in seconds of access tokens issued by each vendor's token endpoint."""
    return {
        "square": 30 * 86_400.0,
        "mailchimp": 0.0,  # no token endpoint: API keys do not expire
        "typeform": 7 * 86_400.0,
        "quickbooks": 3600.0,
        "hubspot": 1800.0,
    }


@dataclass(frozen=True)
class SandboxConfig:
    """Everything that shapes a sandbox.

    Attributes:
        seed: world seed (same seed, same data).
        customers: number of real persons (1 to 1 000 000).
        anchor: instant the seeded data ends.
        credentials: per vendor.
        rate_limits: per vendor (and ``hubspot.search``); ``enforce_rate_limits`` switches all off.
        enforce_rate_limits: apply ``rate_limits`` (faults still inject 429s when off).
        page_limits: page and batch caps.
        token_ttl: access-token lifetime per vendor, seconds (QuickBooks' static token too).
        rotate_refresh_tokens: vendors whose refresh token is single-use.
        quickbooks_realm: the company id in QuickBooks paths.
        allow_remote_webhooks: let webhook deliveries leave loopback (default: loopback only).
        request_log_size: how many recent requests ``/_sandbox/requests`` keeps.
        prerender: render every seeded body at start-up (slower start, more memory; a server
            that answers at the speed of a parse, for benchmarks of the connectors).
        webhook_secret: the ``whsec_`` secret the webhook receiver (``/webhook/...``) verifies.
    """

    seed: int = 7
    customers: int = 3000
    anchor: datetime = DEFAULT_ANCHOR
    credentials: dict[str, Credentials] = field(default_factory=default_credentials)
    rate_limits: dict[str, RateLimit] = field(default_factory=default_rate_limits)
    enforce_rate_limits: bool = True
    page_limits: PageLimits = field(default_factory=PageLimits)
    token_ttl: dict[str, float] = field(default_factory=default_token_ttl)
    rotate_refresh_tokens: frozenset[str] = frozenset({"quickbooks", "typeform"})
    quickbooks_realm: str = "9341453908051276"
    allow_remote_webhooks: bool = False
    request_log_size: int = 2000
    prerender: bool = False
    webhook_secret: str = "whsec_Y3JtLWh1Yi1zYW5kYm94LXdlYmhvb2stc2VjcmV0ISE="
