"""Push through a Singer target run as a program: ours (Mailchimp, HubSpot, webhook) or any other
(``type: singer``, e.g. ``target-jsonl``).

The hub writes ``SCHEMA``, then per batch its ``RECORD`` lines and a ``STATE`` line
``{"crm_hub_publish": {"run_id", "batch": n}}``. What landed is learnt two ways:

- crm-hub targets write ``{"crm_hub_target": {"confirmed": [...], "rejected": [...]}}`` after
  each batch (connectors/target_common/report.py): confirmed keys and refusals with reasons;
- any Singer target echoes a STATE once every record before it is persisted: the echo of
  batch ``n`` confirms every record of batches ``≤ n`` not already settled.

**Kill-safe, with the store as the only state.** The target runs under a recorder
(:mod:`recorder`), a small process in its own session that outlives a killed hub: the target
reads the hub's pipe directly, and the recorder writes every stdout line of the target into the
store as it comes (``publish_target_output``) and the end of its stderr. Each batch is written to
``publish_inflight`` before the target gets any of it. The hub follows the push by reading those
output rows. If the hub is killed, the target reads end-of-input, finishes the batch it has and
its state lines still reach the store; the next push first waits for that recorder and target to
exit, then settles everything the rows confirm (:meth:`recover`) and deletes them, so what landed
is neither re-sent nor lost. A recorder on another host (a shared PostgreSQL store) cannot be
looked at: it counts as running while it beats (:mod:`inflight`). The target's ``--config``
(secrets) and our targets' ``rejections_path`` live in a private temp folder (0700, file 0600)
that the recorder deletes when the target exits; the reasons the hub needs are on stdout, hence
in the store. A ``.crm-hub/publish/<destination>`` folder left by older versions is only named
in a warning (:data:`LEGACY_SPOOL`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import orjson
from sqlalchemy.engine import RowMapping

from crm_hub.config.destinations import SingerDestination
from crm_hub.errors import BusyError, CrmHubError, FatalSourceError, RetryableSourceError
from crm_hub.logging import get_logger, redact
from crm_hub.publish.driver import DriverContext, Outcome, Settle, Throttle, register_driver
from crm_hub.publish.inflight import (
    STORE_ENV,
    forget_runs,
    read_output,
    read_runs,
    read_sent,
    recorder_command,
    register,
    save_batch,
    silent_seconds,
    still_running,
)
from crm_hub.publish.payload import Outgoing
from crm_hub.sync.subprocess_runner import resolve_command, write_private_json

__all__ = ["SingerTargetDriver"]

log = get_logger(__name__)
CONTRACT_KEY = "crm_hub_target"
STATE_KEY = "crm_hub_publish"
WORKDIR_PREFIX = "crm-hub-publish-"  # the recorder's private temp folder
# Where versions before migration 0010 kept a push's spool, beside hub.yaml (now unused).
LEGACY_SPOOL = Path(".crm-hub", "publish")
_legacy_warned: set[Path] = set()  # each leftover folder is named once per process
_RECORD_FIELDS = ("email", "segments", "segments_exited", "email_consent", "sms_consent",
                  "_deleted", "_erase", "merged_into")  # fmt: skip
_OURS = {
    "mailchimp": "connectors.target_mailchimp",
    "hubspot": "connectors.target_hubspot",
    "webhook": "connectors.target_webhook",
}


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
    """Feeds the target's stdin (throttled), each batch kept in the store before it goes."""

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
            self._put(driver.schema_message())
            for number, batch in enumerate(self.batches, start=1):
                save_batch(driver.store, driver.name, driver.run_id, number, batch)
                for item in batch:
                    self.ledger.sent[item.master_id] = (item, number)
                    throttle.wait()
                    self._put({"type": "RECORD", "stream": driver.stream, "record": item.record})
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


class SingerTargetDriver:
    """Runs one Singer target per push (see the module docstring)."""

    def __init__(
        self, ctx: DriverContext, argv: list[str], target_config: dict[str, Any], *,
        ours: bool,
    ) -> None:  # fmt: skip
        self.name, self.run_id, self.base_dir = ctx.name, ctx.run_id, ctx.base_dir
        self.store = ctx.store
        self.argv, self.target_config, self.ours = argv, target_config, ours
        self.stream: str = ctx.config.stream
        self.rate_limit: float | None = ctx.config.rate_limit
        self.fields: list[str] = [ctx.config.mapping.get(f, f) for f in ctx.config.fields]
        self.wait_seconds = float(getattr(ctx.config, "time_budget_seconds", 600))

    def schema_message(self) -> dict[str, Any]:
        """SCHEMA of the stream: every field a record may carry, any type."""
        names = sorted({"master_id", *self.fields, *_RECORD_FIELDS})
        schema = {"type": "object", "properties": {n: {} for n in names}}
        return {"type": "SCHEMA", "stream": self.stream, "schema": schema,
                "key_properties": ["master_id"]}  # fmt: skip

    def recover(self, settle: Settle) -> int:
        """Settle what a killed push left in the store (waiting for its recorder to exit)."""
        _warn_legacy_spool(self.base_dir / LEGACY_SPOOL / self.name, self.name)
        settled = 0
        for run in read_runs(self.store, self.name):
            self._wait_gone(run)
            ledger = _Ledger(settle, run["run_id"])
            ledger.sent = read_sent(self.store, self.name, run["run_id"])
            for _, line in read_output(self.store, self.name, run["run_id"]):
                ledger.line(line.encode())
            settled += ledger.confirmed + ledger.rejected
            log.info("recovered an interrupted push", destination=self.name, run=run["run_id"],
                     settled=ledger.confirmed + ledger.rejected,
                     unsettled=len(ledger.sent) - ledger.confirmed - ledger.rejected)  # fmt: skip
            _remove_workdir(run)
        forget_runs(self.store, self.name)
        return settled

    def _wait_gone(self, run: RowMapping) -> None:
        deadline = time.monotonic() + self.wait_seconds
        while still_running(self.store, run):
            if time.monotonic() >= deadline:
                heard = ""
                if run["host"] != socket.gethostname():
                    heard = f", last heartbeat {silent_seconds(self.store, run):.0f} s ago"
                raise BusyError(
                    f"destination {self.name}: the target of an interrupted push (run "
                    f"{run['run_id']}, recorder pid {run['pid']} on {run['host']}{heard}) is "
                    f"still running after {self.wait_seconds:g} s; wait for it, or stop it"
                )
            time.sleep(0.1)
            run = next(iter(read_runs(self.store, self.name, run["run_id"])), run)

    def send(self, batches: Iterable[list[Outgoing]], settle: Settle) -> None:
        """Run the target on ``batches``; settle each batch as its state line arrives."""
        workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))  # 0700
        try:
            recorder = self._start(workdir)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        ledger = _Ledger(settle, self.run_id)
        assert recorder.stdin is not None and recorder.stderr is not None
        writer = _Writer(self, recorder.stdin, batches, ledger)
        writer.start()
        with recorder.stderr:
            self._follow(recorder, ledger)
            writer.join()
            run = next(iter(read_runs(self.store, self.name, self.run_id)), None)
            if run is not None and run["finished_at"] is not None:  # all of it is settled
                forget_runs(self.store, self.name, self.run_id)
            if writer.error is not None:
                raise writer.error
            self._check(recorder, run)

    def _start(self, workdir: Path) -> subprocess.Popen[bytes]:
        """Start the recorder (it starts the target) in its own session; register it."""
        config = dict(self.target_config)
        if self.ours:
            config["rejections_path"] = str(workdir / "rejected.jsonl")
        config_path = write_private_json(workdir, "config.json", config)
        target = [*self.argv, "--config", str(config_path)]
        url = self.store.engine.url.render_as_string(hide_password=False)
        recorder = subprocess.Popen(
            recorder_command(self.name, self.run_id, workdir, target),
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            cwd=self.base_dir, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", STORE_ENV: url},
        )  # fmt: skip
        register(self.store, self.name, self.run_id, workdir, recorder.pid)
        return recorder

    def _follow(self, recorder: subprocess.Popen[bytes], ledger: _Ledger) -> None:
        """Settle the target's lines as the recorder stores them, until it exits."""
        seen = 0
        while True:
            exited = recorder.poll() is not None
            rows = read_output(self.store, self.name, self.run_id, seen)
            for seq, line in rows:
                ledger.line(line.encode())
                seen = seq
            if not rows:
                if exited:
                    return
                time.sleep(0.05)

    def _check(self, recorder: subprocess.Popen[bytes], run: RowMapping | None) -> None:
        """Raise when the target did not start or failed."""
        if run is None or run["finished_at"] is None:  # its rows stay for the next push
            assert recorder.stderr is not None
            said = redact(recorder.stderr.read().decode("utf-8", errors="replace").strip())
            raise CrmHubError(
                f"destination {self.name}: the recorder of the push stopped with code "
                f"{recorder.returncode}: {said[-2000:] or 'no message'}"
            )
        if run["error"]:
            raise CrmHubError(f"destination {self.name}: {run['error']}")
        if run["exit_code"] != 0:
            raise self._failed(run["exit_code"], run["stderr_tail"] or "")

    def _failed(self, code: int, stderr: str) -> CrmHubError:
        lines = stderr.splitlines()
        tail = redact(" | ".join(line.strip() for line in lines[-6:]))
        message = f"destination {self.name}: target exited with code {code}; last stderr: {tail}"
        if "DestinationAuthError" in stderr:
            return FatalSourceError(message + " (credentials refused: fix hub.yaml)")
        return RetryableSourceError(message + " (what landed is kept; the next push goes on)")


def _warn_legacy_spool(folder: Path, destination: str) -> None:
    """Name a spool folder left by an older crm-hub, once: it may hold the target's config with
    its secrets, and nothing reads it any more (deleting users' files silently is not ours)."""
    if folder in _legacy_warned or not folder.is_dir():
        return
    _legacy_warned.add(folder)
    log.warning(
        "folder left by a crm-hub older than store migration 0010, no longer used: delete it "
        "(it may hold the target's config, with credentials); what its interrupted push had "
        "not settled is sent again",
        path=str(folder), destination=destination,
    )  # fmt: skip


def _remove_workdir(run: RowMapping) -> None:
    """Delete a killed recorder's private folder (it holds the target's secrets)."""
    workdir = Path(run["workdir"])
    if run["host"] == socket.gethostname() and workdir.name.startswith(WORKDIR_PREFIX):
        shutil.rmtree(workdir, ignore_errors=True)


def _ours(ctx: DriverContext) -> SingerTargetDriver:
    config = ctx.config
    options = {**config.target_options(), "batch_size": config.batch_size}
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
