"""The sandbox application: one request in, one response out, no sockets.

Every vendor request goes through the same steps, in this order: a planned fault (or one named
by the ``X-Sandbox-Fault`` header), the vendor's rate limit, its authentication, then the
endpoint, which runs under the world lock. Control requests (``/_sandbox/...``) go to
``control``. Each request is logged as one structured line without secrets.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from connectors.sandbox import (
    control,
    hubspot,
    mailchimp,
    mailchimp_reports,
    quickbooks,
    square,
    typeform,
    webhook_receiver,
)
from connectors.sandbox.auth import TokenStore
from connectors.sandbox.config import VENDORS, SandboxConfig
from connectors.sandbox.faults import Fault, FaultError, FaultPlan
from connectors.sandbox.ratelimit import Limiter
from connectors.sandbox.routing import BadRequestBody, Request, Response, json_response
from connectors.sandbox.vendor import VendorSpec
from connectors.sandbox.world import World, build_world

logger = logging.getLogger("connectors.sandbox")

SPECS: dict[str, VendorSpec] = {
    "square": square.SPEC,
    "mailchimp": mailchimp.SPEC,
    "typeform": typeform.SPEC,
    "quickbooks": quickbooks.SPEC,
    "hubspot": hubspot.SPEC,
    "webhook": webhook_receiver.SPEC,
}
_SECRET_QUERY_KEYS = {
    "access_token",
    "refresh_token",
    "client_secret",
    "apikey",
    "api_key",
    "code",
    "token",
}


@dataclass
class Context:
    """What endpoint handlers may use.

    Attributes:
        world: the data (handlers run under ``world.lock``).
        config: the sandbox configuration.
        tokens: token store per vendor.
        state: per-vendor state that is not records (webhooks, lists, segments).
        base_url: the server's base URL once bound (``http://127.0.0.1:8765``).
        limiters: rate limiters by name (``"hubspot.search"`` is used by its endpoint).
    """

    world: World
    config: SandboxConfig
    tokens: dict[str, TokenStore]
    state: dict[str, dict[str, Any]] = field(default_factory=dict)
    base_url: str = "http://127.0.0.1"
    limiters: dict[str, Limiter] = field(default_factory=dict)

    def vendor_url(self, vendor: str) -> str:
        """Base URL of a vendor (what a connector is configured with)."""
        return f"{self.base_url}/{vendor}"

    def extra_limit(self, name: str) -> float:
        """Take from a named secondary limiter; seconds to wait (0: allowed)."""
        limiter = self.limiters.get(name)
        if limiter is None or not self.config.enforce_rate_limits:
            return 0.0
        return limiter.take()


def _token_stores(config: SandboxConfig) -> dict[str, TokenStore]:
    return {
        vendor: TokenStore(
            vendor,
            config.credentials[vendor],
            ttl=config.token_ttl.get(vendor, 3600.0),
            rotate=vendor in config.rotate_refresh_tokens,
            static_expires=vendor == "quickbooks",
        )
        for vendor in VENDORS
    }


class Sandbox:
    """The emulated vendors, their data, faults and limits.

    Args:
        config: the configuration (seed, size, credentials, limits).
        world: an already built world (default: built from ``config``).
    """

    def __init__(self, config: SandboxConfig | None = None, world: World | None = None) -> None:
        self.config = config or SandboxConfig()
        self.faults = FaultPlan()
        self.stopping = threading.Event()
        self.requests: deque[dict[str, Any]] = deque(maxlen=self.config.request_log_size)
        self._last_ok: dict[tuple[str, str, str], Response] = {}
        self.base_url = "http://127.0.0.1"
        self.context = self._fresh_context(world)

    def _fresh_context(self, world: World | None) -> Context:
        config = self.config
        world = world or build_world(config.seed, config.customers, anchor=config.anchor)
        if config.prerender:
            for table in world.tables.values():
                table.prerender()
            mailchimp_reports.campaigns(world)  # the per-campaign reports, too
        limiters = {name: Limiter(limit) for name, limit in config.rate_limits.items()}
        return Context(world, config, _token_stores(config), {}, self.base_url, limiters)

    def bind(self, base_url: str) -> None:
        """Tell the sandbox the URL it is served at (used in links and the info endpoint)."""
        self.base_url = base_url.rstrip("/")
        self.context.base_url = self.base_url

    @property
    def world(self) -> World:
        """The current world."""
        return self.context.world

    def reset(self) -> None:
        """Rebuild the world from the seed; forget faults, tokens, webhooks and written data."""
        self.faults.clear()
        self._last_ok.clear()
        self.context = self._fresh_context(None)
        logger.info("sandbox.reset seed=%s customers=%s", self.config.seed, self.config.customers)

    def inject(self, vendor: str, kind: str, **options: Any) -> Fault:
        """Plan a fault, e.g. ``inject("square", "429", count=5)``; see ``faults`` for kinds.

        Raises:
            FaultError: for an unknown vendor, kind or option.
        """
        return self.plan(Fault(vendor=vendor, kind=kind, **options))

    def plan(self, fault: Fault) -> Fault:
        """Plan an already built fault (checks the vendor name).

        Raises:
            FaultError: for an unknown vendor.
        """
        if fault.vendor != "*" and fault.vendor not in SPECS:
            raise FaultError(f"unknown vendor {fault.vendor!r}; vendors: {', '.join(SPECS)} or '*'")
        return self.faults.add(fault)

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Response:
        """Serve one request.

        Args:
            method: HTTP method.
            target: path and query as sent (``/square/v2/customers?limit=10``).
            headers: request headers with lower-cased names.
            body: raw body.

        Returns:
            The response to send.
        """
        started = time.perf_counter()
        split = urlsplit(target)
        query = parse_qs(split.query, keep_blank_values=True)
        prefix, _, rest = split.path.lstrip("/").partition("/")
        request = Request(method.upper(), "/" + rest, query, headers, body, prefix)
        fault: Fault | None = None
        if prefix == "_sandbox":
            response = control.handle(self, request)
        elif prefix in SPECS:
            try:
                fault = self._fault_for(request)
            except FaultError as exc:
                response = json_response(
                    400, {"error": "bad X-Sandbox-Fault header", "detail": str(exc)}
                )
            else:
                response = self._serve(SPECS[prefix], request, fault)
        else:
            response = json_response(
                404,
                {
                    "error": f"unknown prefix /{prefix}",
                    "vendors": list(SPECS),
                    "control": "/_sandbox",
                },
            )
        self._log(request, response, fault, started)
        return response

    def _fault_for(self, request: Request) -> Fault | None:
        header = request.header("x-sandbox-fault")
        if header:
            return Fault.from_header(request.vendor, header)
        return self.faults.take(request.vendor, request.path)

    def _serve(self, spec: VendorSpec, request: Request, fault: Fault | None) -> Response:
        ctx = self.context
        limiter = ctx.limiters.get(spec.name)
        gate = limiter.in_flight if limiter is not None and ctx.config.enforce_rate_limits else None
        if gate is not None and not gate.enter():
            return spec.throttled(request, None)
        try:
            early = self._apply_fault(spec, request, fault)
            if early is not None:
                return early
            if not spec.is_public(request):
                wait = (
                    limiter.take()
                    if limiter is not None and ctx.config.enforce_rate_limits
                    else 0.0
                )
                if wait > 0:
                    return spec.throttled(request, wait)
                state = spec.authenticate(ctx, request)
                if state != "ok":
                    return spec.unauthorized(request, state)
            response = self._dispatch(spec, request)
        finally:
            if gate is not None:
                gate.leave()
        if fault is not None and fault.kind == "truncate" and response.stream is None:
            response = Response(
                response.status, response.body[: max(1, len(response.body) // 2)], response.headers
            )
        elif response.status == 200 and response.stream is None:
            self._last_ok[(spec.name, request.method, request.path)] = response
        return response

    def _apply_fault(
        self, spec: VendorSpec, request: Request, fault: Fault | None
    ) -> Response | None:
        if fault is None:
            return None
        if fault.kind == "429":
            response = spec.throttled(request, None)
            if fault.retry_after is not None and response.header("Retry-After") is None:
                response.headers.append(("Retry-After", str(math.ceil(fault.retry_after))))
            return response
        if fault.kind == "5xx":
            return spec.server_error(request, fault.status)
        if fault.kind == "stall":
            self.stopping.wait(fault.seconds)
        elif fault.kind == "expire_token":
            self.context.tokens[spec.name].expire_now(static_failures=1)
        elif fault.kind == "empty_page":
            request.empty_page = True
        elif fault.kind == "duplicate_page":
            previous = self._last_ok.get((spec.name, request.method, request.path))
            if previous is not None:
                return previous
            self.faults.give_back(fault)
        return None

    def _dispatch(self, spec: VendorSpec, request: Request) -> Response:
        handler, params, path_known = spec.router.match(request.method, request.path)
        if handler is None:
            return spec.not_found(request, path_known)
        try:
            with self.context.world.lock:
                return handler(self.context, request, params)
        except BadRequestBody as exc:
            return spec.bad_request(request, str(exc))

    def _log(
        self, request: Request, response: Response, fault: Fault | None, started: float
    ) -> None:
        elapsed_ms = (time.perf_counter() - started) * 1000
        safe_query = "&".join(
            f"{k}={'***' if k.lower() in _SECRET_QUERY_KEYS else v}"
            for k, vs in request.query.items()
            for v in vs
        )
        entry = {
            "vendor": request.vendor,
            "method": request.method,
            "path": request.path,
            "query": safe_query,
            "status": response.status,
            "fault": fault.kind if fault else None,
            "ms": round(elapsed_ms, 2),
        }
        self.requests.append(entry)
        logger.info(
            "sandbox.request vendor=%s method=%s path=%s status=%s fault=%s ms=%.1f",
            request.vendor,
            request.method,
            request.path,
            response.status,
            entry["fault"],
            elapsed_ms,
            extra={"sandbox": entry},
        )
