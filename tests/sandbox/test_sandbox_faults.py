"""Every fault kind, planned through the control endpoint, the API or a request header."""

from __future__ import annotations

import dataclasses
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sandbox_helpers import AUTH, MAILCHIMP_AUTH, qb_path

from connectors.sandbox import FaultError, RateLimit, SandboxConfig, SandboxServer


def _request(
    client: httpx.Client, info: dict[str, Any], vendor: str, **params: Any
) -> httpx.Response:
    if vendor == "mailchimp":
        list_id = info["vendors"]["mailchimp"]["list_ids"][0]
        return client.get(
            f"/mailchimp/3.0/lists/{list_id}/members", params=params, auth=MAILCHIMP_AUTH
        )
    paths = {
        "square": "/square/v2/customers",
        "typeform": f"/typeform/forms/{info['vendors']['typeform']['form_ids'][0]}/responses",
        "quickbooks": qb_path(info, "query"),
        "hubspot": "/hubspot/crm/v3/objects/contacts",
    }
    if vendor == "quickbooks":
        params = {"query": "SELECT * FROM Customer MAXRESULTS 5", **params}
    return client.get(paths[vendor], params=params, headers=AUTH[vendor])


def _plan(client: httpx.Client, **fault: Any) -> dict[str, Any]:
    answer = client.post("/_sandbox/faults", json=fault)
    assert answer.status_code == 201, answer.text
    return answer.json()


THROTTLED = {
    "square": (lambda b: b["errors"][0]["code"] == "RATE_LIMITED", False),
    "mailchimp": (lambda b: b["status"] == 429 and b["title"] == "Too Many Requests", False),
    "typeform": (lambda b: b["code"] == "TOO_MANY_REQUESTS", True),
    "quickbooks": (lambda b: b["Fault"]["Error"][0]["code"] == "003001", False),
    "hubspot": (lambda b: b["errorType"] == "RATE_LIMIT" and "policyName" in b, False),
}


@pytest.mark.parametrize("vendor", sorted(THROTTLED))
def test_429_storm_in_the_vendors_words(
    client: httpx.Client, info: dict[str, Any], vendor: str
) -> None:
    _plan(client, vendor=vendor, kind="429", count=3)
    answers = [_request(client, info, vendor) for _ in range(4)]
    assert [a.status_code for a in answers] == [429, 429, 429, 200]
    shape, sends_retry_after = THROTTLED[vendor]
    assert shape(answers[0].json())
    assert ("Retry-After" in answers[0].headers) is sends_retry_after


def test_429_with_an_explicit_retry_after(client: httpx.Client, info: dict[str, Any]) -> None:
    _plan(client, vendor="square", kind="429", retry_after=7)
    assert _request(client, info, "square").headers["Retry-After"] == "7"


@pytest.mark.parametrize(
    ("vendor", "status"),
    [("square", 503), ("mailchimp", 500), ("quickbooks", 502), ("hubspot", 500), ("typeform", 503)],
)
def test_server_errors_carry_the_vendors_body(
    client: httpx.Client, info: dict[str, Any], vendor: str, status: int
) -> None:
    _plan(client, vendor=vendor, kind="5xx", status=status)
    answer = _request(client, info, vendor)
    assert answer.status_code == status
    body = answer.json()
    assert {
        "square": "errors",
        "mailchimp": "title",
        "quickbooks": "Fault",
        "hubspot": "correlationId",
        "typeform": "code",
    }[vendor] in body
    assert _request(client, info, vendor).status_code == 200


def test_stall_past_the_client_timeout(client: httpx.Client, info: dict[str, Any]) -> None:
    _plan(client, vendor="hubspot", kind="stall", seconds=1.0)
    with pytest.raises(httpx.ReadTimeout):
        client.get("/hubspot/crm/v3/objects/contacts", headers=AUTH["hubspot"], timeout=0.2)
    assert _request(client, info, "hubspot").status_code == 200


def test_truncated_json_is_a_complete_response_with_a_broken_body(
    client: httpx.Client, info: dict[str, Any]
) -> None:
    _plan(client, vendor="mailchimp", kind="truncate")
    answer = _request(client, info, "mailchimp", count=5)
    assert answer.status_code == 200
    assert int(answer.headers["Content-Length"]) == len(answer.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(answer.content)


def test_duplicate_page_repeats_the_previous_page(
    client: httpx.Client, info: dict[str, Any]
) -> None:
    first = _request(client, info, "square", limit=5).json()
    _plan(client, vendor="square", kind="duplicate_page")
    again = _request(client, info, "square", limit=5, cursor=first["cursor"]).json()
    assert again == first
    following = _request(client, info, "square", limit=5, cursor=first["cursor"]).json()
    assert {c["id"] for c in following["customers"]}.isdisjoint(
        {c["id"] for c in first["customers"]}
    )


def test_empty_page_keeps_a_cursor_that_resumes(client: httpx.Client, info: dict[str, Any]) -> None:
    _plan(client, vendor="square", kind="empty_page")
    empty = _request(client, info, "square", limit=5).json()
    assert "customers" not in empty and empty["cursor"]
    resumed = _request(client, info, "square", limit=5, cursor=empty["cursor"]).json()
    assert resumed["customers"] == _request(client, info, "square", limit=5).json()["customers"]


def test_empty_page_on_offset_paging_still_reports_the_total(
    client: httpx.Client, info: dict[str, Any]
) -> None:
    _plan(client, vendor="mailchimp", kind="empty_page")
    page = _request(client, info, "mailchimp", count=5).json()
    assert page["members"] == [] and page["total_items"] > 0


def test_a_fault_can_wait_for_the_middle_of_a_sync(
    client: httpx.Client, info: dict[str, Any]
) -> None:
    _plan(client, vendor="typeform", kind="5xx", after=2, path="/responses")
    statuses = [_request(client, info, "typeform").status_code for _ in range(4)]
    assert statuses == [200, 200, 503, 200]


def test_a_single_request_can_ask_for_its_own_fault(client: httpx.Client) -> None:
    headers = {**AUTH["square"], "X-Sandbox-Fault": "5xx;status=502"}
    assert client.get("/square/v2/customers", headers=headers).status_code == 502
    assert client.get("/square/v2/customers", headers=AUTH["square"]).status_code == 200


def test_fault_control_endpoint_lists_and_clears(
    client: httpx.Client, server: SandboxServer
) -> None:
    _plan(client, vendor="square", kind="429", count=5)
    server.sandbox.inject("hubspot", "stall", seconds=2)
    assert len(client.get("/_sandbox/faults").json()["faults"]) == 2
    assert client.delete("/_sandbox/faults", params={"vendor": "square"}).json() == {"cleared": 1}
    assert [f["vendor"] for f in client.get("/_sandbox/faults").json()["faults"]] == ["hubspot"]
    assert client.delete("/_sandbox/faults").json() == {"cleared": 1}


@pytest.mark.parametrize(
    "fault",
    [
        {"vendor": "square", "kind": "meltdown"},
        {"vendor": "xero", "kind": "429"},
        {"vendor": "square", "kind": "5xx", "status": 404},
        {"kind": "429"},
    ],
    ids=["unknown-kind", "unknown-vendor", "5xx-not-5xx", "no-vendor"],
)
def test_bad_faults_are_refused(
    client: httpx.Client, server: SandboxServer, fault: dict[str, Any]
) -> None:
    assert client.post("/_sandbox/faults", json=fault).status_code == 400
    with pytest.raises(FaultError):
        server.sandbox.inject(
            fault.get("vendor", ""),
            fault["kind"],
            **({"status": fault["status"]} if "status" in fault else {}),
        )


def _limited(limits: dict[str, RateLimit]) -> SandboxConfig:
    config = SandboxConfig(customers=40)
    return dataclasses.replace(config, rate_limits={**config.rate_limits, **limits})


def test_token_bucket_throttles_typeform_with_retry_after() -> None:
    with (
        SandboxServer(_limited({"typeform": RateLimit(per_second=0.5, burst=2)})) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        info = server.info()
        statuses = [_request(client, info, "typeform") for _ in range(3)]
        assert [s.status_code for s in statuses] == [200, 200, 429]
        assert int(statuses[2].headers["Retry-After"]) >= 1


def test_hubspot_search_has_its_own_tighter_limit() -> None:
    with (
        SandboxServer(_limited({"hubspot.search": RateLimit(per_second=0.2, burst=2)})) as server,
        httpx.Client(base_url=server.url) as client,
    ):
        answers = [
            client.post("/hubspot/crm/v3/objects/contacts/search", json={}, headers=AUTH["hubspot"])
            for _ in range(3)
        ]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert answers[2].json()["policyName"] == "SECONDLY"
        assert (
            client.get("/hubspot/crm/v3/objects/contacts", headers=AUTH["hubspot"]).status_code
            == 200
        )


def test_mailchimp_refuses_more_simultaneous_connections() -> None:
    with SandboxServer(_limited({"mailchimp": RateLimit(concurrency=2)})) as server:
        list_path = f"/mailchimp/3.0/lists/{server.info()['vendors']['mailchimp']['list_ids'][0]}"
        stalled = {"X-Sandbox-Fault": "stall;seconds=5"}

        def slow() -> int:
            with httpx.Client(base_url=server.url, timeout=10) as own:
                return own.get(list_path, headers=stalled, auth=MAILCHIMP_AUTH).status_code

        with ThreadPoolExecutor(2) as pool, httpx.Client(base_url=server.url, timeout=5) as client:
            futures = [pool.submit(slow) for _ in range(2)]
            deadline = time.monotonic() + 4
            answer = client.get(list_path, auth=MAILCHIMP_AUTH)
            while answer.status_code != 429 and time.monotonic() < deadline:
                time.sleep(0.02)  # until both slow requests hold their slot
                answer = client.get(list_path, auth=MAILCHIMP_AUTH)
            server.sandbox.stopping.set()  # wake the stalled requests
            assert answer.status_code == 429
            assert answer.json()["title"] == "Too Many Requests"
            assert [f.result() for f in futures] == [200, 200]
