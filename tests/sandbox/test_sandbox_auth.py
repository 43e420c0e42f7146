"""Authentication as each vendor does it: 401 bodies, token refresh, rotation, expiry."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import httpx
import pytest
from sandbox_helpers import AUTH, MAILCHIMP_AUTH, qb_path, qb_query

from connectors.sandbox import SandboxConfig, SandboxServer

QUERY = "SELECT * FROM Customer STARTPOSITION 1 MAXRESULTS 5"


def _get(client: httpx.Client, info: dict[str, Any], vendor: str, **kwargs: Any) -> httpx.Response:
    form_id = info["vendors"]["typeform"]["form_ids"][0]
    paths = {
        "square": "/square/v2/customers",
        "mailchimp": "/mailchimp/3.0/lists",
        "typeform": f"/typeform/forms/{form_id}/responses",
        "quickbooks": qb_path(info, "query?query=" + QUERY.replace(" ", "%20")),
        "hubspot": "/hubspot/crm/v3/objects/contacts",
    }
    return client.get(paths[vendor], **kwargs)


def _error_shape(vendor: str, body: dict[str, Any]) -> bool:
    if vendor == "square":
        return body["errors"][0]["category"] == "AUTHENTICATION_ERROR"
    if vendor == "mailchimp":
        return body["status"] == 401 and body["title"].startswith("API Key") and "instance" in body
    if vendor == "typeform":
        return body["code"] == "AUTHENTICATION_FAILED"
    if vendor == "quickbooks":
        return (
            body["Fault"]["Error"][0]["code"] == "3200"
            and body["Fault"]["type"] == "AUTHENTICATION"
        )
    return body["category"] == "INVALID_AUTHENTICATION" and "correlationId" in body


VENDORS = ["square", "mailchimp", "typeform", "quickbooks", "hubspot"]


@pytest.mark.parametrize("vendor", VENDORS)
def test_missing_credentials_get_the_vendors_401(
    client: httpx.Client, info: dict[str, Any], vendor: str
) -> None:
    answer = _get(client, info, vendor)
    assert answer.status_code == 401
    assert _error_shape(vendor, answer.json())


@pytest.mark.parametrize("vendor", VENDORS)
def test_wrong_credentials_get_the_vendors_401(
    client: httpx.Client, info: dict[str, Any], vendor: str
) -> None:
    if vendor == "mailchimp":
        answer = _get(client, info, vendor, auth=("anyone", "wrong-key-us21"))
    else:
        answer = _get(client, info, vendor, headers={"Authorization": "Bearer not-the-token"})
    assert answer.status_code == 401
    assert _error_shape(vendor, answer.json())


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_documented_credentials_work(
    client: httpx.Client, info: dict[str, Any], vendor: str
) -> None:
    kwargs: dict[str, Any] = (
        {"auth": MAILCHIMP_AUTH} if vendor == "mailchimp" else {"headers": AUTH[vendor]}
    )
    assert _get(client, info, vendor, **kwargs).status_code == 200


def _refresh_qb(client: httpx.Client, info: dict[str, Any], refresh_token: str) -> httpx.Response:
    oauth = info["vendors"]["quickbooks"]["oauth"]
    return client.post(
        "/quickbooks/oauth2/v1/tokens/bearer",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(oauth["client_id"], oauth["client_secret"]),
    )


def test_quickbooks_refresh_token_rotates_and_the_old_one_dies(
    client: httpx.Client, info: dict[str, Any]
) -> None:
    first = info["vendors"]["quickbooks"]["oauth"]["refresh_token"]
    answer = _refresh_qb(client, info, first)
    assert answer.status_code == 200
    issued = answer.json()
    assert issued["refresh_token"] != first
    assert qb_query(client, info, QUERY, token=issued["access_token"]).status_code == 200

    reused = _refresh_qb(client, info, first)
    assert reused.status_code == 400
    assert reused.json() == {"error": "invalid_grant"}
    assert _refresh_qb(client, info, issued["refresh_token"]).status_code == 200


def test_quickbooks_token_endpoint_checks_the_client(
    client: httpx.Client, info: dict[str, Any]
) -> None:
    answer = client.post(
        "/quickbooks/oauth2/v1/tokens/bearer",
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        auth=("who", "knows"),
    )
    assert answer.status_code == 401
    assert answer.json() == {"error": "invalid_client"}


def test_quickbooks_access_token_expires_then_refresh_works() -> None:
    config = SandboxConfig(customers=40, enforce_rate_limits=False)
    config = dataclasses.replace(config, token_ttl={**config.token_ttl, "quickbooks": 1.0})
    with SandboxServer(config) as server, httpx.Client(base_url=server.url, timeout=5) as client:
        info = server.info()
        assert qb_query(client, info, QUERY).status_code == 200
        time.sleep(1.05)
        expired = qb_query(client, info, QUERY)
        assert expired.status_code == 401
        assert expired.json()["Fault"]["Error"][0]["Detail"] == "Token expired"
        issued = _refresh_qb(
            client, info, info["vendors"]["quickbooks"]["oauth"]["refresh_token"]
        ).json()
        assert qb_query(client, info, QUERY, token=issued["access_token"]).status_code == 200


@pytest.mark.parametrize(
    ("vendor", "path", "kind"),
    [
        ("square", "/square/oauth2/token", "json"),
        ("typeform", "/typeform/oauth/token", "form"),
        ("hubspot", "/hubspot/oauth/v1/token", "form"),
    ],
)
def test_oauth_refresh_issues_a_working_token(
    client: httpx.Client, info: dict[str, Any], vendor: str, path: str, kind: str
) -> None:
    oauth = info["vendors"][vendor]["oauth"]
    fields = {
        "grant_type": "refresh_token",
        "refresh_token": oauth["refresh_token"],
        "client_id": oauth["client_id"],
        "client_secret": oauth["client_secret"],
    }
    answer = client.post(path, json=fields) if kind == "json" else client.post(path, data=fields)
    assert answer.status_code == 200
    token = answer.json()["access_token"]
    assert (
        _get(client, info, vendor, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
    reused = client.post(path, json=fields) if kind == "json" else client.post(path, data=fields)
    # Typeform rotates its refresh tokens; Square (code flow) and HubSpot do not.
    assert reused.status_code == (400 if vendor == "typeform" else 200)


def test_expire_token_fault_gives_the_vendors_expired_401_then_heals(
    server: SandboxServer, client: httpx.Client, info: dict[str, Any]
) -> None:
    server.sandbox.inject("square", "expire_token")
    expired = _get(client, info, "square", headers=AUTH["square"])
    assert expired.status_code == 401
    assert expired.json()["errors"][0]["code"] == "ACCESS_TOKEN_EXPIRED"
    assert _get(client, info, "square", headers=AUTH["square"]).status_code == 200


def test_expire_token_fault_kills_issued_tokens_until_refresh(
    client: httpx.Client, info: dict[str, Any]
) -> None:
    issued = _refresh_qb(
        client, info, info["vendors"]["quickbooks"]["oauth"]["refresh_token"]
    ).json()
    fault = {"vendor": "quickbooks", "kind": "expire_token", "after": 1}
    assert client.post("/_sandbox/faults", json=fault).status_code == 201
    assert qb_query(client, info, QUERY, token=issued["access_token"]).status_code == 200
    assert qb_query(client, info, QUERY, token=issued["access_token"]).status_code == 401
    assert qb_query(client, info, QUERY, token=issued["access_token"]).status_code == 401
    renewed = _refresh_qb(client, info, issued["refresh_token"]).json()
    assert qb_query(client, info, QUERY, token=renewed["access_token"]).status_code == 200


def test_logs_never_contain_secrets(
    client: httpx.Client, info: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="connectors.sandbox")
    secret = info["vendors"]["quickbooks"]["oauth"]["refresh_token"]
    _refresh_qb(client, info, secret)
    _get(client, info, "square", headers=AUTH["square"])
    client.get("/square/v2/customers", params={"access_token": "sandbox-square-token"})
    assert "sandbox.request" in caplog.text
    fields = [str(record.__dict__.get("sandbox")) for record in caplog.records]
    assert any("access_token=***" in f for f in fields)
    logged = caplog.text + "".join(fields)
    for value in (
        secret,
        "sandbox-square-token",
        info["vendors"]["quickbooks"]["oauth"]["client_secret"],
    ):
        assert value not in logged
