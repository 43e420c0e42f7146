"""Alerts on a failed run: an error log line always, plus hub.yaml's ``alerts:`` (a JSON POST
to a webhook, an e-mail), each only when configured.

Used by the Prefect flows (flows/) and usable by ``crm-hub run``. Sending an alert never raises:
a broken alert channel is logged and must not hide the failure it reports. Secrets (the webhook
URL, headers, the SMTP password) never appear in a log line or in the returned problems.
"""

from __future__ import annotations

import platform
import smtplib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any
from urllib.parse import urlsplit

import httpx

from crm_hub.config.models import AlertsConfig, EmailAlertConfig, WebhookAlertConfig
from crm_hub.logging import get_logger, register_secret

__all__ = ["Alert", "alert_payload", "send_failure_alert"]

log = get_logger("crm_hub.alerts")

ALERT_TYPE = "crm_hub.run_failed"


@dataclass(slots=True)
class Alert:
    """What a failure alert says; its fields are the webhook's JSON body.

    Example body: ``{"type": "crm_hub.run_failed", "run": "crm-hub-pipeline",
    "failures": ["sync pos_orders: path 'data/orders.jsonl' matches no file"], ...}``.
    """

    run: str
    """Which run failed: ``crm-hub run``, or the Prefect flow's name."""
    failures: list[str]
    """One line per failed part, as ``RunSummary.failures`` writes them."""
    project: str = ""
    """The folder holding hub.yaml (tells projects apart on one alert channel)."""
    run_id: str | None = None
    """The Prefect flow run id (or another id of the run), when there is one."""
    url: str | None = None
    """Where to look: the flow run in the Prefect UI, when known."""
    type: str = ALERT_TYPE
    host: str = field(default_factory=platform.node)
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def subject(self) -> str:
        """One line for an e-mail subject or a chat message."""
        where = f" ({self.project})" if self.project else ""
        return f"crm-hub: {self.run} failed{where}: {len(self.failures)} failure(s)"

    def text(self) -> str:
        """The alert as plain text."""
        lines = [self.subject(), "", *(f"- {failure}" for failure in self.failures), ""]
        lines += [f"host: {self.host}", f"at: {self.at}"]
        if self.run_id:
            lines.append(f"run id: {self.run_id}")
        if self.url:
            lines.append(f"see: {self.url}")
        return "\n".join(lines)


def send_failure_alert(
    alerts: AlertsConfig, alert: Alert, *, transport: httpx.BaseTransport | None = None
) -> list[str]:
    """Report a failed run: log it as an error, then send it to every configured channel.

    Args:
        alerts: hub.yaml's ``alerts:`` section (``config.alerts``).
        alert: what failed.
        transport: an httpx transport for the webhook (tests, proxies); default: the network.

    Returns:
        Problems sending the alert, one line per channel that failed (empty: all delivered).
        They are logged too; the caller may show them.
    """
    log.error("run failed", run=alert.run, failures=alert.failures, run_id=alert.run_id or "-")
    problems = []
    if alerts.webhook is not None:
        problem = _post_webhook(alerts.webhook, alert, transport)
        if problem:
            problems.append(problem)
    if alerts.email is not None:
        problem = _send_email(alerts.email, alert)
        if problem:
            problems.append(problem)
    for problem in problems:
        log.error("alert not delivered", problem=problem)
    return problems


def _post_webhook(
    config: WebhookAlertConfig, alert: Alert, transport: httpx.BaseTransport | None
) -> str | None:
    url = config.url.get_secret_value()
    headers = {name: value.get_secret_value() for name, value in config.headers.items()}
    for secret in (url, *headers.values()):
        register_secret(secret)
    # Only scheme://host:port is safe to show: paths and queries of webhook URLs hold tokens.
    parts = urlsplit(url)
    shown = f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    try:
        with httpx.Client(timeout=config.timeout_seconds, transport=transport) as client:
            response = client.post(url, json=alert_payload(alert), headers=headers)
    except httpx.HTTPError as exc:
        return (
            f"alert webhook {shown}: {type(exc).__name__} (refused, or no answer within "
            f"{config.timeout_seconds:g} s)"
        )
    if response.status_code >= 400:
        return f"alert webhook {shown}: answered HTTP {response.status_code}"
    log.info("alert sent", channel="webhook", to=shown)
    return None


def _send_email(config: EmailAlertConfig, alert: Alert) -> str | None:
    if config.password is not None:
        register_secret(config.password.get_secret_value())
    message = EmailMessage()
    message["Subject"] = alert.subject()
    message["From"] = config.sender
    message["To"] = ", ".join(config.to)
    message.set_content(alert.text())
    where = f"{config.smtp_host}:{config.smtp_port}"
    try:
        with smtplib.SMTP(
            config.smtp_host, config.smtp_port, timeout=config.timeout_seconds
        ) as smtp:
            if config.starttls:
                smtp.starttls()
            if config.username and config.password is not None:
                smtp.login(config.username, config.password.get_secret_value())
            smtp.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        return f"alert e-mail via {where}: {type(exc).__name__}: {_first_line(exc)}"
    log.info("alert sent", channel="email", to=config.to)
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else "no detail"


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The webhook's JSON body for ``alert``."""
    return asdict(alert)
