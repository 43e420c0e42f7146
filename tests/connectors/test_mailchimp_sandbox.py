"""The Mailchimp manifest over real sockets against the sandbox: counts, incremental, faults."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest
from airbyte_cdk.models import (
    AirbyteStateBlob,
    AirbyteStateMessage,
    AirbyteStateType,
    AirbyteStreamState,
    Status,
    StreamDescriptor,
)
from source_harness import (
    CLOSED_PORT_URL,
    check,
    error_messages,
    final_state,
    inject,
    mutate,
    read,
    records,
    request_log,
    sandbox_config,
    truth_ids,
    waits_after,
)

from connectors.sandbox import SandboxServer

VENDOR = "mailchimp"
MEMBER_STREAMS = ["lists", "members", "member_tags"]
REPORT_STREAMS = ["campaigns", "email_activity"]


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    """~130 members over two audiences, each with a few activity events."""
    with SandboxServer(customers=220, seed=11) as running:
        yield running


def _keys(rows: list[dict[str, str]], member: str = "id") -> list[str]:
    return [f"{r['list_id']}:{r[member]}" for r in rows]


def test_full_read_returns_every_member_exactly_once() -> None:
    with SandboxServer(customers=3000, seed=11) as big:  # one audience over 1,000: two pages
        output = read(VENDOR, sandbox_config(VENDOR, big.url), streams=MEMBER_STREAMS)
        truth = truth_ids(big, VENDOR)

    members = records(output, "members")
    keys = _keys(members)
    assert len(keys) == len(set(keys))
    assert set(keys) == truth
    assert max(Counter(m["list_id"] for m in members).values()) > 1000
    tags = [(t["list_id"], t["member_id"], t["tag_id"]) for t in records(output, "member_tags")]
    expected = [(m["list_id"], m["id"], tag["id"]) for m in members for tag in m["tags"]]
    assert sorted(tags) == sorted(expected)


def test_member_activity_is_read_for_every_member(server: SandboxServer) -> None:
    output = read(VENDOR, sandbox_config(VENDOR, server.url))

    activity = records(output, "member_activity")
    assert set(_keys(activity, "member_id")) == set(_keys(records(output, "members")))
    keys = [
        (a["list_id"], a["member_id"], a["activity_type"], a["created_at_timestamp"])
        for a in activity
    ]
    assert len(keys) == len(set(keys))


def test_incremental_read_returns_only_changed_members(server: SandboxServer) -> None:
    config = sandbox_config(VENDOR, server.url)
    first = read(VENDOR, config)
    newest: dict[str, str] = {}  # the cursor is kept per audience
    for member in records(first, "members"):
        newest[member["list_id"]] = max(newest.get(member["list_id"], ""), member["last_changed"])
    report = mutate(server, VENDOR, changes=3, adds=2, deletes=1)

    second = read(VENDOR, config, state=final_state(first))

    expected = set(report["changed"]) | set(report["added"]) | set(report["deleted"])
    members = {f"{m['list_id']}:{m['id']}": m for m in records(second, "members")}
    assert expected <= set(members)
    # Besides the changes, only members of the saved cursor's second are read again.
    assert all(
        members[k]["last_changed"] == newest[members[k]["list_id"]] for k in set(members) - expected
    )
    assert [members[k]["status"] for k in report["deleted"]] == ["archived"]
    # The children only visit the members read again.
    assert set(_keys(records(second, "member_activity"), "member_id")) <= set(members)
    assert set(_keys(records(second, "member_tags"), "member_id")) <= set(members)
    assert records(second, "member_activity")


def test_rate_limit_waits_for_retry_after(server: SandboxServer) -> None:
    inject(server, VENDOR, "429", count=1, retry_after=2, path="/members")
    with request_log() as requests:
        output = read(VENDOR, sandbox_config(VENDOR, server.url), streams=["lists", "members"])

    assert set(_keys(records(output, "members"))) == truth_ids(server, VENDOR)
    waits = waits_after(requests, 429)
    assert len(waits) == 1
    # Exponential backoff alone would have retried after ~1.1 s (factor 0.05, plus 1 s).
    assert min(waits) >= 2.0  # never before Retry-After


def test_server_errors_are_retried_then_succeed(server: SandboxServer) -> None:
    inject(server, VENDOR, "5xx", count=1, status=502, path="/members")
    with request_log() as requests:
        output = read(VENDOR, sandbox_config(VENDOR, server.url), streams=["lists", "members"])

    assert set(_keys(records(output, "members"))) == truth_ids(server, VENDOR)
    assert [r.status for r in requests if r.path.endswith("/members")].count(502) == 1


def test_truncated_json_is_retried_then_fails_clearly(server: SandboxServer) -> None:
    inject(server, VENDOR, "truncate", count=1, path="/members")
    retried = read(VENDOR, sandbox_config(VENDOR, server.url), streams=["lists", "members"])
    inject(server, VENDOR, "truncate", count=10, path="/members")
    config = sandbox_config(VENDOR, server.url, max_retries=1)
    failed = read(VENDOR, config, streams=["lists", "members"], expect_failure=True)

    assert set(_keys(records(retried, "members"))) == truth_ids(server, VENDOR)
    assert any("not valid JSON" in message for message in error_messages(failed))


def test_check_fails_naming_the_api_key(server: SandboxServer) -> None:
    config = sandbox_config(VENDOR, server.url, api_key="0123456789abcdef-us21")

    status, message = check(VENDOR, config)

    assert status == Status.FAILED
    assert "refused the API key" in message and "401" in message


def test_check_fails_naming_the_host_when_unreachable() -> None:
    config = sandbox_config(VENDOR, "unused", base_url=CLOSED_PORT_URL, max_retries=0)

    status, message = check(VENDOR, config)

    assert status == Status.FAILED
    assert "Connection refused" in message and "port=9" in message


def test_data_centre_defaults_to_the_api_key_suffix() -> None:
    from airbyte_cdk.sources.declarative.concurrent_declarative_source import (
        ConcurrentDeclarativeSource,
    )
    from source_harness import load_manifest, register_components

    register_components(VENDOR)
    source = ConcurrentDeclarativeSource(
        source_config=load_manifest(VENDOR), config={"api_key": "abc-us7"}, catalog=None, state=None
    )
    explicit = ConcurrentDeclarativeSource(
        source_config=load_manifest(VENDOR),
        config={"api_key": "abc-us7", "dc": "us21"},
        catalog=None,
        state=None,
    )

    assert source._config["api_root"] == "https://us7.api.mailchimp.com/3.0"
    assert explicit._config["api_root"] == "https://us21.api.mailchimp.com/3.0"


def _arg(query: str, name: str) -> str:
    return parse_qs(query).get(name, [""])[0]


def _activity_keys(rows: list[dict[str, str]]) -> list[tuple[str, str, str, str]]:
    return [(r["campaign_id"], r["email_id"], r["action"], r["timestamp"]) for r in rows]


def _feed_actions(output: object) -> list[tuple[str, str, str, str]]:
    """The opens, clicks and bounces of member_activity, keyed as email_activity keys them."""
    renamed = {"open": "open", "click": "click", "bounce": "bounce"}
    return [
        (a["campaign_id"], a["member_id"], renamed[a["activity_type"]], a["created_at_timestamp"])
        for a in records(output, "member_activity")  # type: ignore[arg-type]
        if a["activity_type"] in renamed
    ]


def test_email_activity_agrees_with_the_member_activity_feed(server: SandboxServer) -> None:
    output = read(VENDOR, sandbox_config(VENDOR, server.url))

    activity = records(output, "email_activity")
    keys = _activity_keys(activity)
    assert len(keys) == len(set(keys))
    assert sorted(keys) == sorted(_feed_actions(output))
    assert {a["action"] for a in activity} == {"open", "click", "bounce"}
    assert all(a["url"] for a in activity if a["action"] == "click")
    sent = {c["id"]: c["emails_sent"] for c in records(output, "campaigns")}
    assert set(sent) == {a["campaign_id"] for a in activity}


def test_email_activity_pages_through_a_large_campaign() -> None:
    # customers=7000: the newest campaign has over 1,000 recipients with activity.
    with SandboxServer(customers=7000, seed=11) as big, request_log() as requests:
        output = read(VENDOR, sandbox_config(VENDOR, big.url), streams=REPORT_STREAMS)

    keys = _activity_keys(records(output, "email_activity"))
    assert len(keys) == len(set(keys))
    offsets = [_arg(r.query, "offset") for r in requests if r.path.endswith("/email-activity")]
    assert "1000" in offsets
    largest = max(records(output, "campaigns"), key=lambda c: c["emails_sent"])
    recipients = {k[1] for k in keys if k[0] == largest["id"]}
    assert len(recipients) > 1000


def test_email_activity_incremental_asks_since_the_saved_cursor(server: SandboxServer) -> None:
    config = sandbox_config(VENDOR, server.url)
    first = read(VENDOR, config, streams=REPORT_STREAMS)
    newest = max(a["timestamp"] for a in records(first, "email_activity"))

    with request_log() as requests:
        second = read(VENDOR, config, state=final_state(first), streams=REPORT_STREAMS)

    sinces = [_arg(r.query, "since") for r in requests if r.path.endswith("/email-activity")]
    assert "" not in sinces and max(sinces) < newest
    # Only the actions of the last saved second of each campaign come back (one second looked back).
    again = records(second, "email_activity")
    assert 0 < len(again) < len(records(first, "email_activity")) / 10
    assert set(_activity_keys(again)) <= set(_activity_keys(records(first, "email_activity")))


def test_email_activity_waits_for_retry_after(server: SandboxServer) -> None:
    inject(server, VENDOR, "429", count=1, retry_after=2, path="/email-activity")
    with request_log() as requests:
        output = read(VENDOR, sandbox_config(VENDOR, server.url), streams=REPORT_STREAMS)

    assert records(output, "email_activity")
    assert min(waits_after(requests, 429)) >= 2.0


def test_email_activity_with_a_refused_key_fails_naming_it(server: SandboxServer) -> None:
    config = sandbox_config(VENDOR, server.url, api_key="0123456789abcdef-us21")

    failed = read(VENDOR, config, streams=REPORT_STREAMS, expect_failure=True)

    assert any("refused the API key" in m and "401" in m for m in error_messages(failed))


SENT_STREAMS = ["sent_to", "email_activity"]


def _sent_keys(rows: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(r["campaign_id"], r["email_id"]) for r in rows]


def test_sent_to_lists_every_recipient_including_those_without_activity(
    server: SandboxServer,
) -> None:
    output = read(VENDOR, sandbox_config(VENDOR, server.url), streams=["campaigns", *SENT_STREAMS])

    sent_to = records(output, "sent_to")
    keys = _sent_keys(sent_to)
    assert len(keys) == len(set(keys))
    campaigns = {c["id"]: c for c in records(output, "campaigns")}
    assert Counter(k[0] for k in keys) == {i: c["emails_sent"] for i, c in campaigns.items()}
    assert all(r["campaign_send_time"] == campaigns[r["campaign_id"]]["send_time"] for r in sent_to)
    active = set(_sent_keys(records(output, "email_activity")))
    assert active < set(keys)  # opens, clicks and bounces are of recipients; many have none
    bounces = [a for a in records(output, "email_activity") if a["action"] == "bounce"]
    not_delivered = [r for r in sent_to if r["status"] != "sent"]
    assert bounces and set(_sent_keys(bounces)) == set(_sent_keys(not_delivered))


def test_sent_to_pages_through_a_large_campaign() -> None:
    # customers=3000: the newest campaign of an audience goes to over 1,000 members.
    with SandboxServer(customers=3000, seed=11) as big, request_log() as requests:
        output = read(VENDOR, sandbox_config(VENDOR, big.url), streams=["sent_to"])

    keys = _sent_keys(records(output, "sent_to"))
    assert len(keys) == len(set(keys))
    offsets = [_arg(r.query, "offset") for r in requests if r.path.endswith("/sent-to")]
    assert "1000" in offsets
    assert max(Counter(k[0] for k in keys).values()) > 1000


def _sent_to_state_at(
    state: list[AirbyteStateMessage], send_time: str
) -> list[AirbyteStateMessage]:
    """sent_to's saved state moved to ``send_time``: as if the last sync had ended there."""
    saved = state[0].stream.stream_state.__dict__  # type: ignore[union-attr]
    moved = {
        **saved,
        "state": {"campaign_send_time": send_time},
        "parent_state": {"sent_campaigns": {"send_time": send_time}},
    }
    return [
        AirbyteStateMessage(
            type=AirbyteStateType.STREAM,
            stream=AirbyteStreamState(
                stream_descriptor=StreamDescriptor(name="sent_to"),
                stream_state=AirbyteStateBlob(**moved),
            ),
        )
    ]


def test_sent_to_incremental_after_member_changes_reads_no_recipient_again(
    server: SandboxServer,
) -> None:
    config = sandbox_config(VENDOR, server.url)
    first = read(VENDOR, config, streams=["sent_to"])
    newest = max(r["campaign_send_time"] for r in records(first, "sent_to"))
    mutate(server, VENDOR, changes=5, adds=1)  # members change; no campaign is sent

    with request_log() as requests:
        second = read(VENDOR, config, state=final_state(first), streams=["sent_to"])

    sinces = [_arg(r.query, "since_send_time") for r in requests if r.path.endswith("/campaigns")]
    # From the saved cursor, with no look-back (the query reads its "+" as a space).
    assert [since.replace(" ", "+") for since in sinces] == [newest]
    # since_send_time includes its own second: the campaigns sent then are not read again.
    assert records(second, "sent_to") == []
    assert not [r for r in requests if r.path.endswith("/sent-to")]


def test_sent_to_incremental_reads_only_campaigns_sent_strictly_after_the_cursor(
    server: SandboxServer,
) -> None:
    config = sandbox_config(VENDOR, server.url)
    first = read(VENDOR, config, streams=["sent_to"])
    by_time: dict[str, set[tuple[str, str]]] = {}
    for row in records(first, "sent_to"):
        by_time.setdefault(row["campaign_send_time"], set()).add(_sent_keys([row])[0])
    *_, cursor, newest = sorted(by_time)

    second = read(
        VENDOR, config, state=_sent_to_state_at(final_state(first), cursor), streams=["sent_to"]
    )

    again = _sent_keys(records(second, "sent_to"))
    assert len(again) == len(set(again))
    assert set(again) == by_time[newest]  # the cursor's own campaigns are not read again


def test_sent_to_look_back_when_set_re_reads_the_campaigns_sent_within_it(
    server: SandboxServer,
) -> None:
    config = sandbox_config(VENDOR, server.url, sent_to_lookback_days=15)  # campaigns: fortnightly
    first = read(VENDOR, config, streams=["sent_to"])
    by_time: dict[str, set[tuple[str, str]]] = {}
    for row in records(first, "sent_to"):
        by_time.setdefault(row["campaign_send_time"], set()).add(_sent_keys([row])[0])
    *_, before, newest = sorted(by_time)

    second = read(VENDOR, config, state=final_state(first), streams=["sent_to"])

    assert set(_sent_keys(records(second, "sent_to"))) == by_time[before] | by_time[newest]


def test_sent_to_waits_for_retry_after(server: SandboxServer) -> None:
    inject(server, VENDOR, "429", count=1, retry_after=2, path="/sent-to")
    with request_log() as requests:
        output = read(VENDOR, sandbox_config(VENDOR, server.url), streams=["sent_to"])

    assert records(output, "sent_to")
    assert min(waits_after(requests, 429)) >= 2.0
