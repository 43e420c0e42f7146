"""Source connectors benchmark: each manifest reads a 100k-people sandbox, full then incremental.

The sandbox runs in its own process (its own interpreter and core); each connector's manifest is
read in this process with airbyte-cdk's ConcurrentDeclarativeSource, counting RECORD messages,
as an in-process hub reader would consume them. After the full read, about 1 % of each vendor's
records change (``POST /_sandbox/mutate``) and the connector reads again from its saved state.

    python benchmarks/sources.py [--customers 100000] [--change-percent 1] [--vendor-limits]
        [--only square,typeform] [--skip-streams member_activity] [--through-hub]

``--through-hub`` also syncs each source with crm-hub (its native reader) into a SQLite store.
Mailchimp's ``member_activity`` (one request per member) is skipped by default: ``email_activity``
and ``unsubscribes`` read the same events per campaign (``--skip-streams ''`` reads it too).

By default the sandbox renders every seeded record at start-up (``--prerender``; one core of
render work would otherwise cap what the connector on the other core can be shown to do) and its
rate limits are off and Typeform's client-side pace is raised, so the
figures measure the connectors, not the vendors' published limits; ``--vendor-limits`` keeps
them (Typeform's 2 requests/s then caps it near 2,000 responses/s; Square's emulated 20/s caps
its 100-per-page customer search near 2,000/s). Target: >= 5,000 records/s per connector on a
full read. After each incremental read, one line per stream sets the records read against the
records the sandbox changed (``GET /_sandbox/changes``): what is read beyond them was read again.
The last line is ``RESULT sources square_rps=... mailchimp_rps=... typeform_rps=...
quickbooks_rps=...``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml
from airbyte_cdk.models import (
    AirbyteStateMessage,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteStream,
    DestinationSyncMode,
    SyncMode,
    Type,
)
from airbyte_cdk.sources.declarative.concurrent_declarative_source import (
    ConcurrentDeclarativeSource,
)

from connectors.sandbox import SandboxProcess

CONNECTORS = Path(__file__).resolve().parents[1] / "connectors"
VENDORS = ("square", "mailchimp", "typeform", "quickbooks")
# (table, kind) changed per vendor for the incremental read; Typeform responses never change,
# people answer again, so its "changes" are new responses.
CHANGES = {
    "square": [("square.customers", "changes"), ("square.orders", "changes")],
    "mailchimp": [("mailchimp.members", "changes")],
    "typeform": [("typeform.responses", "adds")],
    "quickbooks": [("quickbooks.customers", "changes"), ("quickbooks.invoices", "changes")],
}
# Streams without a cursor: read whole each sync (few records).
WHOLE_READS = frozenset({"locations", "lists", "campaigns", "forms"})
LOGGER = logging.getLogger("benchmarks.sources")


@dataclass
class Run:
    """One read: records per stream, seconds, the state to resume from, the streams read."""

    seconds: float
    counts: dict[str, int]
    state: list[AirbyteStateMessage] = field(default_factory=list)
    control_messages: int = 0
    streams: list[str] = field(default_factory=list)

    @property
    def records(self) -> int:
        return sum(self.counts.values())

    @property
    def rps(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def vendor_config(vendor: str, url: str, *, vendor_limits: bool) -> dict[str, Any]:
    """A connector config pointing at the sandbox (default retries and backoff)."""
    base = f"{url}/{vendor}"
    if vendor == "square":
        return {"access_token": "sandbox-square-token", "base_url": base}
    if vendor == "mailchimp":
        return {"api_key": "sandbox-mailchimp-key-us21", "base_url": base}
    if vendor == "typeform":
        pace = 2 if vendor_limits else 100
        token = "sandbox-typeform-token"
        return {"access_token": token, "base_url": base, "requests_per_second": pace}
    return {
        "credentials": {
            "client_id": "sandbox-quickbooks-app",
            "client_secret": "sandbox-quickbooks-secret",
            "refresh_token": "sandbox-quickbooks-refresh",
        },
        "realm_id": "9341453908051276",
        "base_url": base,
        "token_url": f"{base}/oauth2/v1/tokens/bearer",
    }


def register_components(vendor: str) -> None:
    """Register the connector's components.py under the module name its manifest uses."""
    name = f"crm_hub_bench_components_{vendor}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, CONNECTORS / f"source_{vendor}" / "components.py"
        )
        assert spec is not None and spec.loader is not None
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    sys.modules["source_declarative_manifest.components"] = sys.modules[name]


def read(
    vendor: str,
    config: dict[str, Any],
    state: list[AirbyteStateMessage] | None = None,
    skip: frozenset[str] = frozenset(),
) -> Run:
    """Read every stream of a manifest but ``skip`` in-process (incremental where supported)."""
    register_components(vendor)
    manifest = yaml.safe_load((CONNECTORS / f"source_{vendor}" / "manifest.yaml").read_text())
    probe = ConcurrentDeclarativeSource(source_config=manifest, config=config, catalog=None)
    streams = probe.discover(LOGGER, config).streams
    catalog = ConfiguredAirbyteCatalog(
        streams=[
            ConfiguredAirbyteStream(
                stream=s,
                sync_mode=SyncMode.incremental,
                destination_sync_mode=DestinationSyncMode.append_dedup,
            )
            for s in streams
            if s.name not in skip
        ]
    )
    source = ConcurrentDeclarativeSource(
        source_config=manifest, config=config, catalog=catalog, state=state
    )
    logging.getLogger("airbyte").setLevel(logging.WARNING)  # its INFO lines go to stdout
    counts: dict[str, int] = {}
    last_state: dict[str, AirbyteStateMessage] = {}
    printed = io.StringIO()  # CONTROL messages (rotated tokens) and stream statuses go to stdout
    started = time.perf_counter()
    with contextlib.redirect_stdout(printed):
        for message in source.read(LOGGER, config, catalog, state):
            if message.type == Type.RECORD and message.record is not None:
                counts[message.record.stream] = counts.get(message.record.stream, 0) + 1
            elif message.type == Type.STATE and message.state is not None:
                assert message.state.stream is not None
                last_state[message.state.stream.stream_descriptor.name] = message.state
            elif message.type == Type.TRACE and message.trace and message.trace.error:
                raise SystemExit(f"{vendor}: {message.trace.error.message}")
    seconds = time.perf_counter() - started
    controls = printed.getvalue().count('"CONNECTOR_CONFIG"')
    names = [s.stream.name for s in catalog.streams]
    return Run(seconds, counts, list(last_state.values()), controls, names)


@dataclass
class Mutation:
    """Records a vendor's mutations touched and the first instant they were stamped with."""

    touched: int
    since_ms: int


def mutate(url: str, vendor: str, tables: dict[str, int], percent: float) -> Mutation:
    """Change about ``percent`` % of the vendor's records."""
    touched = 0
    stamps = []
    for table, kind in CHANGES[vendor]:
        count = max(1, round(tables[table] * percent / 100))
        body = {"vendor": vendor, "table": table, kind: count}
        response = httpx.post(f"{url}/_sandbox/mutate", json=body, timeout=120)
        response.raise_for_status()
        stamps.append(response.json()["stamped_at"])
        touched += count
    # Each mutation is stamped in a fresh second, which runs ahead of the wall clock when
    # mutations follow each other within one second; each sync's window ends at its start
    # (Mailchimp and QuickBooks: at the start of its second). Wait until the second after the
    # last stamp (a few seconds at most), or the changes go to the next sync.
    newest = max(time.time(), max(stamps) / 1000)
    time.sleep(min(5.0, max(0.0, int(newest) + 1.05 - time.time())))
    return Mutation(touched, min(stamps))


def changed_since(url: str, since_ms: int) -> dict[str, int]:
    """The sandbox's own count of records stamped since ``since_ms``, by table or stream."""
    response = httpx.get(f"{url}/_sandbox/changes", params={"since": since_ms}, timeout=120)
    response.raise_for_status()
    counts: dict[str, int] = response.json()["tables"]
    return counts


def print_read_vs_changed(
    vendor: str, streams: list[str], incremental: Run, changed: dict[str, int]
) -> None:
    """Per stream: records the incremental read returned against those the sandbox changed.

    The rest were read again: an inclusive cursor's newest second (fine when under 1 % of the
    changes) or a stream read whole each sync (WHOLE: lists, campaigns, locations, forms).
    """
    for stream in streams:
        read_count = incremental.counts.get(stream, 0)
        key = f"{vendor}.{stream}"
        if stream in WHOLE_READS:
            print(
                f"{vendor:<11}   {stream:<17} read {read_count:>7}  (WHOLE: read in full each sync)"
            )
            continue
        if key not in changed:
            print(f"{vendor:<11}   {stream:<17} read {read_count:>7}  changed ?")
            continue
        again = read_count - changed[key]
        limit = max(1, changed[key] // 100)
        verdict = "ok" if again <= limit else f"TOO MANY (> {limit})"
        print(
            f"{vendor:<11}   {stream:<17} read {read_count:>7}  changed {changed[key]:>7}  "
            f"read again {again:>6}  {verdict}"
        )


def hub_readers() -> list[str]:
    """Source types the hub's sync registry can read (for the through-the-hub run)."""
    try:
        from crm_hub.sync.registry import READERS
    except ImportError:
        return []
    return sorted(READERS)


def through_hub(
    vendor: str,
    config: dict[str, Any],
    streams: list[str],
    url: str,
    tables: dict[str, int],
    percent: float,
) -> tuple[Any, Any, int]:
    """Sync the source with crm-hub into a fresh SQLite store: full, then after ~1 % changes.

    The same in-memory hub config serves both syncs: the hub does not persist QuickBooks'
    rotated refresh token yet, but the token written into the config dict survives in memory.
    """
    import json
    import tempfile

    from crm_hub.config import load_config
    from crm_hub.store import open_store
    from crm_hub.sync import sync_source

    with tempfile.TemporaryDirectory(prefix="crm-hub-bench-sources-") as folder:
        hub = Path(folder) / "hub.yaml"
        hub.write_text(
            f"store: sqlite:///{folder}/store.db\nsources:\n"
            f"  {vendor}:\n    type: {vendor}\n    streams: {json.dumps(streams)}\n"
            f"    config: {json.dumps(config)}\n",
            encoding="utf-8",
        )
        hub_config = load_config(hub)
        store = open_store(hub_config.store)
        try:
            full = sync_source(store, hub_config, vendor)
            touched = mutate(url, vendor, tables, percent).touched
            incremental = sync_source(store, hub_config, vendor)
        finally:
            store.dispose()
    return full, incremental, touched


def bench_connector(vendor: str, url: str, tables: dict[str, int], args: Any) -> Run:
    """Full read, ~1 % changes, incremental read of one connector; prints both; returns the full."""
    config = vendor_config(vendor, url, vendor_limits=args.vendor_limits)
    skip = frozenset(args.skip_streams.split(",")) - {""}
    full = read(vendor, config, skip=skip)
    print(
        f"{vendor:<11} full        {full.records:>8} records {full.seconds:7.1f} s "
        f"{full.rps:8.0f} records/s  {full.counts}"
    )
    mutation = mutate(url, vendor, tables, args.change_percent)
    # QuickBooks: `config` now holds the rotated refresh token (the CDK wrote it in place), as
    # a hub persisting the CONTROL message would.
    incremental = read(vendor, config, full.state, skip)
    refreshes = full.control_messages + incremental.control_messages
    print(
        f"{vendor:<11} incremental {incremental.records:>8} records "
        f"{incremental.seconds:7.1f} s after {mutation.touched} changes  {incremental.counts}"
        + (f"  token refreshes={refreshes}" if vendor == "quickbooks" else "")
    )
    changed = changed_since(url, mutation.since_ms)
    print_read_vs_changed(vendor, incremental.streams, incremental, changed)
    if not args.through_hub:
        return full
    if vendor not in hub_readers():
        print(f"{vendor:<11} hub: no reader registered in crm_hub.sync.registry; skipped")
        return full
    fresh = vendor_config(vendor, url, vendor_limits=args.vendor_limits)
    if vendor == "quickbooks":
        fresh["credentials"] = dict(config["credentials"])  # the refresh token alive now
    hub_full, hub_incremental, touched = through_hub(
        vendor, fresh, sorted(full.counts), url, tables, args.change_percent
    )
    rate = hub_full.read / hub_full.seconds if hub_full.seconds else 0.0
    print(
        f"{vendor:<11} hub full    {hub_full.read:>8} records {hub_full.seconds:7.1f} s "
        f"{rate:8.0f} records/s  {hub_full.status} inserted={hub_full.inserted}"
        + (f" error={hub_full.error}" if hub_full.error else "")
    )
    print(
        f"{vendor:<11} hub incr    {hub_incremental.read:>8} records "
        f"{hub_incremental.seconds:7.1f} s after {touched} changes  {hub_incremental.status} "
        f"inserted={hub_incremental.inserted} updated={hub_incremental.updated} "
        f"unchanged={hub_incremental.unchanged}"
        + (f" error={hub_incremental.error}" if hub_incremental.error else "")
    )
    return full


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--change-percent", type=float, default=1.0)
    parser.add_argument("--vendor-limits", action="store_true", help="keep vendor rate limits")
    parser.add_argument("--only", default=",".join(VENDORS), help="comma-separated vendors")
    parser.add_argument(
        "--skip-streams",
        default="member_activity",
        help="comma-separated streams to leave out (default: Mailchimp's optional member_activity, "
        "one request per member; email_activity reads the same opens and clicks per campaign); "
        "'' reads every stream",
    )
    parser.add_argument(
        "--render-on-demand",
        action="store_true",
        help="let the sandbox render each record as it is asked for (by default it renders them "
        "all at start-up, so the figures measure the connector, not the emulator)",
    )
    parser.add_argument(
        "--through-hub",
        action="store_true",
        help="also sync each source with crm-hub into SQLite (needs its readers registered)",
    )
    args = parser.parse_args()
    vendors = [v for v in args.only.split(",") if v]
    logging.basicConfig(level=logging.WARNING)

    print(f"cpus={os.cpu_count()} load_before={os.getloadavg()} python={sys.version.split()[0]}")
    extra = () if args.vendor_limits else ("--no-rate-limits",)
    extra += () if args.render_on_demand else ("--prerender",)
    results: dict[str, float] = {}
    with SandboxProcess(
        customers=args.customers, seed=7, extra_args=extra, startup_timeout=900
    ) as sandbox:
        tables = sandbox.info["tables"]
        print(f"sandbox {sandbox.url} customers={args.customers} tables={tables}")
        for vendor in vendors:
            results[vendor] = bench_connector(vendor, sandbox.url, tables, args).rps
    print(f"load_after={os.getloadavg()}")
    rates = " ".join(f"{v}_rps={results[v]:.0f}" for v in VENDORS if v in results)
    print(f"RESULT sources {rates}")


if __name__ == "__main__":
    main()
