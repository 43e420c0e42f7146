"""Push through a Singer target run as a program: ours (Mailchimp, HubSpot, webhook) or any other
(``type: singer``, e.g. ``target-jsonl``).

The hub writes ``SCHEMA``, then per batch its ``RECORD`` lines and a ``STATE`` line
``{"crm_hub_publish": {"run_id", "batch": n}}``. What landed is learnt two ways:

- crm-hub targets write ``{"crm_hub_target": {"confirmed": [...], "rejected": [...]}}`` after
  each batch (connectors/target_common/report.py): confirmed keys and refusals with reasons;
- any Singer target echoes a STATE once every record before it is persisted: the echo of
  batch ``n`` confirms every record of batches ``≤ n`` not already settled.

**Kill-safe spool.** The push runs in ``.crm-hub/publish/<destination>/`` beside hub.yaml
(0700): ``sent.jsonl`` (each record with its payload hash, written before the target gets it),
the target's stdout ``out.jsonl`` and stderr, its config (0600) and ``run.json`` (its pid). The
target runs in its own session and outlives a killed hub: it reads end-of-input, finishes the
batch it has and writes its state lines to the file. The next push first waits for that target
to exit, then settles everything ``out.jsonl`` confirms (:meth:`recover`), so what landed is
neither re-sent nor lost. The spool is removed once settled.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import orjson

from crm_hub.config.destinations import SingerDestination
from crm_hub.errors import BusyError, CrmHubError, FatalSourceError, RetryableSourceError
from crm_hub.logging import get_logger, redact
from crm_hub.publish.driver import DriverContext, Outcome, Settle, Throttle, register_driver
from crm_hub.publish.payload import Outgoing
from crm_hub.sync.subprocess_runner import resolve_command, write_private_json

__all__ = ["SingerTargetDriver", "spool_dir"]

log = get_logger(__name__)
CONTRACT_KEY = "crm_hub_target"
STATE_KEY = "crm_hub_publish"
_RECORD_FIELDS = ("email", "segments", "segments_exited", "email_consent", "sms_consent",
                  "_deleted", "_erase", "merged_into")  # fmt: skip
_OURS = {
    "mailchimp": "connectors.target_mailchimp",
    "hubspot": "connectors.target_hubspot",
    "webhook": "connectors.target_webhook",
}


def spool_dir(base_dir: Path, destination: str) -> Path:
    """Where a push to ``destination`` keeps its kill-safe spool."""
    return base_dir / ".crm-hub" / "publish" / destination


class _Ledger:
    """Records sent (key → (outgoing, batch)) and what settled; turns state lines into settles."""

    def __init__(self, settle: Settle, run_id: str | None) -> None:
        self.sent: dict[str, tuple[Outgoing, int]] = {}
        self.done: set[str] = set()
        self.settle, self.run_id = settle, run_id
        self.confirmed = self.rejected = 0

    def line(self, raw: bytes) -> None:
        try:
            message = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return
        if isinstance(message, dict) and message.get("type") == "STATE":
            message = message.get("value")
        if not isinstance(message, dict):
            return
        outcome = Outcome()
        if isinstance(report := message.get(CONTRACT_KEY), dict):
            for key in report.get("confirmed") or []:
                self._take(key, outcome.confirmed)
            for item in report.get("rejected") or []:
                if isinstance(item, dict) and (found := self._pop(item.get("key"))):
                    outcome.rejected.append((found, str(item.get("reason") or "refused")))
        elif isinstance(echo := message.get(STATE_KEY), dict) and (
            self.run_id is None or echo.get("run_id") == self.run_id
        ):
            upto = int(echo.get("batch") or 0)
            for key, (_, batch) in list(self.sent.items()):
                if batch <= upto:
                    self._take(key, outcome.confirmed)
        if outcome.confirmed or outcome.rejected:
            self.confirmed += len(outcome.confirmed)
            self.rejected += len(outcome.rejected)
            self.settle(outcome)

    def _pop(self, key: Any) -> Outgoing | None:
        key = str(key)
        if key in self.done or key not in self.sent:
            return None
        self.done.add(key)
        return self.sent[key][0]

    def _take(self, key: Any, into: list[Outgoing]) -> None:
        if (found := self._pop(key)) is not None:
            into.append(found)


class _Writer(threading.Thread):
    """Feeds the target's stdin (throttled) and appends each record to ``sent.jsonl`` first."""

    def __init__(
        self, driver: SingerTargetDriver, stdin: IO[bytes], batches: Iterable[list[Outgoing]],
        ledger: _Ledger,
    ) -> None:  # fmt: skip
        super().__init__(name=f"publish-writer:{driver.name}", daemon=True)
        self.driver, self.stdin, self.batches, self.ledger = driver, stdin, batches, ledger
        self.error: BaseException | None = None

    def run(self) -> None:
        driver = self.driver
        throttle = Throttle(driver.rate_limit)
        try:
            with open(driver.spool / "sent.jsonl", "ab") as sent:
                self._put(driver.schema_message())
                for number, batch in enumerate(self.batches, start=1):
                    for item in batch:
                        self.ledger.sent[item.master_id] = (item, number)
                        sent.write(_sent_line(item, number))
                        sent.flush()
                        throttle.wait()
                        self._put({"type": "RECORD", "stream": driver.stream,
                                   "record": item.record})  # fmt: skip
                    state = {STATE_KEY: {"run_id": driver.run_id, "batch": number}}
                    self._put({"type": "STATE", "value": state})
        except BrokenPipeError:
            log.warning("target closed its input early", destination=driver.name)
        except BaseException as exc:  # re-raised by send() after the target settles
            self.error = exc
        finally:
            with contextlib.suppress(OSError):
                self.stdin.close()

    def _put(self, message: dict[str, Any]) -> None:
        self.stdin.write(orjson.dumps(message) + b"\n")  # one write: whole lines only
        self.stdin.flush()


def _sent_line(item: Outgoing, batch: int) -> bytes:
    data = {"b": batch, "k": item.master_id, "a": item.action, "h": item.payload_hash,
            "p": item.payload, "r": item.record}  # fmt: skip
    return orjson.dumps(data) + b"\n"


class SingerTargetDriver:
    """Runs one Singer target per push (see the module docstring)."""

    def __init__(
        self, ctx: DriverContext, argv: list[str], target_config: dict[str, Any], *,
        ours: bool,
    ) -> None:  # fmt: skip
        self.name, self.run_id, self.base_dir = ctx.name, ctx.run_id, ctx.base_dir
        self.argv, self.target_config, self.ours = argv, target_config, ours
        self.stream: str = ctx.config.stream
        self.rate_limit: float | None = ctx.config.rate_limit
        self.fields: list[str] = [ctx.config.mapping.get(f, f) for f in ctx.config.fields]
        self.wait_seconds = float(getattr(ctx.config, "time_budget_seconds", 600))
        self.spool = spool_dir(ctx.base_dir, ctx.name)

    def schema_message(self) -> dict[str, Any]:
        """SCHEMA of the stream: every field a record may carry, any type."""
        names = sorted({"master_id", *self.fields, *_RECORD_FIELDS})
        schema = {"type": "object", "properties": {n: {} for n in names}}
        return {"type": "SCHEMA", "stream": self.stream, "schema": schema,
                "key_properties": ["master_id"]}  # fmt: skip

    def recover(self, settle: Settle) -> int:
        """Settle what a killed push left in the spool (waiting for its target to exit)."""
        if not self.spool.exists():
            return 0
        run_file = self.spool / "run.json"
        if run_file.exists():
            info = orjson.loads(run_file.read_bytes())
            self._wait_gone(int(info["pid"]))
        ledger = _Ledger(settle, None)
        sent = self.spool / "sent.jsonl"
        if sent.exists():
            for raw in sent.read_bytes().splitlines():
                with contextlib.suppress(orjson.JSONDecodeError, KeyError):
                    data = orjson.loads(raw)
                    item = Outgoing(data["k"], data["a"], data["r"], data["h"], data["p"])
                    ledger.sent[item.master_id] = (item, int(data["b"]))
        out = self.spool / "out.jsonl"
        if out.exists():
            for raw in out.read_bytes().splitlines():
                ledger.line(raw)
        settled = ledger.confirmed + ledger.rejected
        log.info("recovered an interrupted push", destination=self.name, settled=settled,
                 unsettled=len(ledger.sent) - settled)  # fmt: skip
        shutil.rmtree(self.spool, ignore_errors=True)
        return settled

    def _wait_gone(self, pid: int) -> None:
        deadline = time.monotonic() + self.wait_seconds
        while _target_alive(pid, self.spool):
            if time.monotonic() >= deadline:
                raise BusyError(
                    f"destination {self.name}: the target of an interrupted push (pid {pid}) "
                    f"is still running after {self.wait_seconds:g} s; wait for it, or stop it"
                )
            time.sleep(0.1)

    def send(self, batches: Iterable[list[Outgoing]], settle: Settle) -> None:
        """Run the target on ``batches``; settle each batch as its state line arrives."""
        shutil.rmtree(self.spool, ignore_errors=True)
        self.spool.mkdir(parents=True, mode=0o700)
        config_path = write_private_json(self.spool, "config.json", self.target_config)
        out_path, err_path = self.spool / "out.jsonl", self.spool / "stderr.log"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            try:
                proc = subprocess.Popen(
                    [*self.argv, "--config", str(config_path)],
                    stdin=subprocess.PIPE, stdout=out, stderr=err, cwd=self.base_dir,
                    start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )  # fmt: skip
            except OSError as exc:
                raise CrmHubError(
                    f"destination {self.name}: cannot start {self.argv[0]!r}: {exc}"
                ) from None
        (self.spool / "run.json").write_bytes(orjson.dumps({"pid": proc.pid, "run": self.run_id}))
        ledger = _Ledger(settle, self.run_id)
        assert proc.stdin is not None
        writer = _Writer(self, proc.stdin, batches, ledger)
        writer.start()
        self._follow(out_path, proc, ledger)
        writer.join()
        if writer.error is not None:
            raise writer.error
        if proc.returncode != 0:
            raise self._failed(proc.returncode, err_path)
        shutil.rmtree(self.spool, ignore_errors=True)

    def _follow(self, path: Path, proc: subprocess.Popen[bytes], ledger: _Ledger) -> None:
        pending = b""
        with open(path, "rb") as handle:
            while True:
                exited = proc.poll() is not None
                chunk = handle.read()
                if chunk:
                    *lines, pending = (pending + chunk).split(b"\n")
                    for raw in lines:
                        ledger.line(raw)
                elif exited:
                    break
                else:
                    time.sleep(0.05)
        if pending.strip():
            ledger.line(pending)

    def _failed(self, code: int, err_path: Path) -> CrmHubError:
        lines = err_path.read_text(encoding="utf-8", errors="replace").splitlines()
        tail = redact(" | ".join(line.strip() for line in lines[-6:]))
        text = "\n".join(lines[-200:])
        message = f"destination {self.name}: target exited with code {code}; last stderr: {tail}"
        if "DestinationAuthError" in text:
            return FatalSourceError(message + " (credentials refused: fix hub.yaml)")
        return RetryableSourceError(message + " (what landed is kept; the next push goes on)")


def _target_alive(pid: int, spool: Path) -> bool:
    """Whether ``pid`` is still the target of this spool (its command line names the spool)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        if sys.platform.startswith("linux"):
            return False
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    return str(spool).encode() in cmdline


def _ours(ctx: DriverContext) -> SingerTargetDriver:
    config = ctx.config
    options = {
        **config.target_options(),
        "batch_size": config.batch_size,
        "rejections_path": str(spool_dir(ctx.base_dir, ctx.name) / "rejected.jsonl"),
    }
    argv = [sys.executable, "-m", _OURS[config.type]]
    return SingerTargetDriver(ctx, argv, options, ours=True)


def _any_singer(ctx: DriverContext) -> SingerTargetDriver:
    config = ctx.config
    assert isinstance(config, SingerDestination)
    argv = resolve_command(f"destination {ctx.name}", config.command, ctx.base_dir)
    return SingerTargetDriver(ctx, argv, config.target_options(), ours=False)


for _kind in _OURS:
    register_driver(_kind, _ours)
register_driver("singer", _any_singer)
