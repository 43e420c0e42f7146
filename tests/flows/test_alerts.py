"""Failure alerts over real loopback servers: a webhook and a tiny SMTP server."""

from __future__ import annotations

import base64
import socket
import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr
from pytest_httpserver import HTTPServer

from crm_hub.alerts import Alert, send_failure_alert
from crm_hub.config.models import AlertsConfig, EmailAlertConfig, WebhookAlertConfig

ALERT = Alert(run="crm-hub run", failures=["sync pos: down"], project="/srv/cafe")


def test_webhook_gets_the_failures_with_its_headers(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(
        "/hook", method="POST", headers={"Authorization": "Bearer s3cret-token"}
    ).respond_with_data("ok")
    alerts = AlertsConfig(
        webhook=WebhookAlertConfig(
            url=SecretStr(httpserver.url_for("/hook")),
            headers={"Authorization": SecretStr("Bearer s3cret-token")},
        )
    )
    assert send_failure_alert(alerts, ALERT) == []
    httpserver.check_assertions()
    body = httpserver.log[0][0].get_json()
    assert body["failures"] == ["sync pos: down"] and body["type"] == "crm_hub.run_failed"


@pytest.mark.parametrize(
    ("answer", "problem"),
    [(500, "answered HTTP 500"), (None, "ConnectError")],
    ids=["server-error", "refused"],
)
def test_undelivered_webhook_is_reported_without_its_token(
    httpserver: HTTPServer, answer: int | None, problem: str, caplog: pytest.LogCaptureFixture
) -> None:
    if answer is None:
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        url = f"http://127.0.0.1:{port}/hooks/T0KEN-abc123"
    else:
        httpserver.expect_request("/hooks/T0KEN-abc123").respond_with_data("no", status=answer)
        url = httpserver.url_for("/hooks/T0KEN-abc123")
    alerts = AlertsConfig(webhook=WebhookAlertConfig(url=SecretStr(url), timeout_seconds=2))

    problems = send_failure_alert(alerts, ALERT)

    assert len(problems) == 1 and problem in problems[0]
    assert "T0KEN" not in problems[0] and "alert webhook http://" in problems[0]
    ours = [r for r in caplog.records if r.name.startswith("crm_hub")]
    assert not [r for r in ours if "T0KEN" in f"{r.getMessage()} {getattr(r, 'fields', '')}"]


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP for smtplib: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT."""

    def handle(self) -> None:
        server: Any = self.server
        self.wfile.write(b"220 test ESMTP\r\n")
        body: list[str] | None = None
        for raw in self.rfile:
            line = raw.decode().rstrip("\r\n")
            if body is not None:
                if line == ".":
                    server.messages.append("\n".join(body))
                    body = None
                    self.wfile.write(b"250 queued\r\n")
                else:
                    body.append(line)
                continue
            verb = line[:4].upper()
            if verb == "EHLO":
                self.wfile.write(b"250-test\r\n250 AUTH PLAIN\r\n")
            elif verb == "AUTH":
                server.logins.append(base64.b64decode(line.split()[-1]).split(b"\0"))
                self.wfile.write(b"235 ok\r\n")
            elif verb == "DATA":
                body = []
                self.wfile.write(b"354 go on\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    server: Any = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Smtp)
    server.daemon_threads = True
    server.messages, server.logins = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_email_alert_goes_through_smtp(smtp_server: Any) -> None:
    alerts = AlertsConfig(
        email=EmailAlertConfig(
            to=["ops@cafe.example"],
            sender="crm-hub@cafe.example",
            smtp_host="127.0.0.1",
            smtp_port=smtp_server.server_address[1],
            starttls=False,
            username="hub",
            password=SecretStr("pa55word"),
        )
    )
    assert send_failure_alert(alerts, ALERT) == []
    (message,) = smtp_server.messages
    assert "Subject: crm-hub: crm-hub run failed (/srv/cafe): 1 failure(s)" in message
    assert "To: ops@cafe.example" in message and "- sync pos: down" in message
    assert smtp_server.logins == [[b"", b"hub", b"pa55word"]]
