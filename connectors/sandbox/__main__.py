"""``python -m connectors.sandbox``: run the sandbox as its own process.

The project's CLI (``crm-hub sandbox``) is the friendly front door; this entry point exists so a
sandbox can run in a child process without the hub installed around it (``SandboxProcess``).
It writes the ``/_sandbox/info`` document to ``--ready-file`` once listening.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from connectors.sandbox.config import SandboxConfig
from connectors.sandbox.server import serve_forever


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m connectors.sandbox", description="Loopback emulation of the vendor APIs."
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    parser.add_argument(
        "--customers", type=int, default=3000, help="real persons in the world (1 to 1000000)"
    )
    parser.add_argument("--seed", type=int, default=7, help="world seed")
    parser.add_argument(
        "--no-rate-limits", action="store_true", help="do not enforce the vendors' rate limits"
    )
    parser.add_argument(
        "--prerender",
        action="store_true",
        help="render every seeded record at start-up (for benchmarks: slower start, more memory)",
    )
    parser.add_argument("--ready-file", type=Path, help="write the info JSON here once listening")
    parser.add_argument(
        "--log-level", default="WARNING", help="logging level (INFO logs each request)"
    )
    return parser


def _interrupt(signum: int, frame: object) -> None:
    """Turn SIGTERM into the same clean shutdown as Ctrl-C."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Parse options and serve until SIGTERM or Ctrl-C."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(message)s",
    )
    signal.signal(signal.SIGTERM, _interrupt)
    config = SandboxConfig(
        seed=args.seed,
        customers=args.customers,
        enforce_rate_limits=not args.no_rate_limits,
        prerender=args.prerender,
    )

    def ready(info: dict[str, Any]) -> None:
        if args.ready_file is not None:
            partial = args.ready_file.with_suffix(".tmp")
            partial.write_text(json.dumps(info), "utf-8")
            partial.replace(args.ready_file)
        sys.stderr.write(f"sandbox listening on {info['base_url']}\n")
        sys.stderr.flush()

    serve_forever(config, host=args.host, port=args.port, on_ready=ready)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
