"""Survivorship rules, one tiny person per case, through the real stage on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

from profile_helpers import World, day, mid

PRIORITY = """\
version: 1
fields:
  email: {rule: source_priority, sources: [pos, web]}
  phone: {rule: source_priority, sources: [news], fallback: []}
"""


def test_source_priority_prefers_the_first_listed_source(world: Callable[..., World]) -> None:
    w = world(PRIORITY)
    w.customer("web", "w1", mid(1), email="web@x.com", updated_at=day(9))
    w.customer("pos", "p1", mid(1), email="pos@x.com", updated_at=day(1))
    golden = w.golden(mid(1))
    assert golden["email"] == "pos@x.com"
    assert golden["provenance"]["email"]["rule"] == "source_priority"


def test_source_priority_falls_back_when_the_preferred_source_has_no_value(
    world: Callable[..., World],
) -> None:
    w = world(PRIORITY)
    w.customer("pos", "p1", mid(1), email=None, phone="+447700900001", updated_at=day(9))
    w.customer("news", "n1", mid(1), email="news@x.com", updated_at=day(2))
    w.customer("news", "n2", mid(1), email="newer@x.com", updated_at=day(3))
    golden = w.golden(mid(1))
    assert golden["email"] == "newer@x.com"  # pos has none, web none: most_recent of the rest
    assert golden["provenance"]["email"]["rule"] == "most_recent"
    assert golden["phone"] is None  # news has no phone and `fallback: []` allows no other source
    assert "phone" not in golden["provenance"]


def test_most_recent_is_by_updated_at_then_mapped_at(world: Callable[..., World]) -> None:
    w = world()
    w.customer("pos", "p1", mid(1), first_name="Ann", updated_at=day(5))
    w.customer("web", "w1", mid(1), first_name="Anne", updated_at=day(6))
    w.customer("news", "n1", mid(1), first_name="Annie", updated_at=None, mapped_at=day(20))
    w.customer("pos", "p2", mid(2), last_name="Old", updated_at=None, mapped_at=day(1))
    w.customer("web", "w2", mid(2), last_name="New", updated_at=None, mapped_at=day(2))
    assert w.golden(mid(1))["first_name"] == "Anne"  # no updated_at counts as oldest
    assert w.golden(mid(2))["last_name"] == "New"


def test_most_frequent_takes_the_majority_and_ties_go_to_the_most_recent(
    world: Callable[..., World],
) -> None:
    w = world("version: 1\nfields:\n  branch: most_frequent\n")
    w.customer("pos", "p1", mid(1), branch="leeds", updated_at=day(1))
    w.customer("web", "w1", mid(1), branch="york", updated_at=day(9))
    w.customer("news", "n1", mid(1), branch="leeds", updated_at=day(2))
    w.customer("pos", "p2", mid(2), branch="leeds", updated_at=day(1))
    w.customer("web", "w2", mid(2), branch="york", updated_at=day(9))
    assert w.golden(mid(1))["branch"] == "leeds"
    assert w.golden(mid(2))["branch"] == "york"
    assert w.golden(mid(1))["provenance"]["branch"]["source_id"] == "n1"  # newest "leeds"


def test_longest_wins_and_ties_go_to_the_most_recent(world: Callable[..., World]) -> None:
    w = world("version: 1\nfields:\n  full_name: longest\n")
    w.customer("pos", "p1", mid(1), full_name="John Smith", updated_at=day(1))
    w.customer("web", "w1", mid(1), full_name="J. Smith", updated_at=day(9))
    w.customer("pos", "p2", mid(2), full_name="Ann Lee", updated_at=day(1))
    w.customer("web", "w2", mid(2), full_name="Ann Loo", updated_at=day(2))
    assert w.golden(mid(1))["full_name"] == "John Smith"
    assert w.golden(mid(2))["full_name"] == "Ann Loo"


def test_a_null_never_beats_a_value(world: Callable[..., World]) -> None:
    w = world()
    w.customer("pos", "p1", mid(1), phone="+447700900001", city="Leeds", updated_at=day(1))
    w.customer("web", "w1", mid(1), phone=None, city=None, updated_at=day(9))
    golden = w.golden(mid(1))
    assert golden["phone"] == "+447700900001"
    assert golden["city"] == "Leeds"
    assert golden["provenance"]["phone"]["source_id"] == "p1"


def test_a_value_is_not_overwritten_with_null_when_its_record_loses_it(
    world: Callable[..., World],
) -> None:
    w = world()
    w.customer("pos", "p1", mid(1), email="old@x.com", updated_at=day(1))
    w.customer("web", "w1", mid(1), email="ann@x.com", updated_at=day(5))
    assert w.golden(mid(1))["email"] == "ann@x.com"
    w.customer("web", "w1", email=None, emails=None, updated_at=day(6))  # cleared in the source
    golden = w.golden(mid(1))
    assert golden["email"] == "ann@x.com"  # not null, not the older old@x.com
    assert golden["provenance"]["email"]["source_id"] == "w1"
    w.customer("pos", "p1", email="new@x.com", updated_at=day(7))  # a newer value does win
    assert w.golden(mid(1))["email"] == "new@x.com"


def test_junk_and_invalid_addresses_never_become_golden(world: Callable[..., World]) -> None:
    w = world()
    w.customer("pos", "p1", mid(1), email="ann@x.com", updated_at=day(1))
    w.customer("web", "w1", mid(1), email="test@test.com", email_flag="junk", updated_at=day(9),
               emails=[{"email": "test@test.com", "match_key": None, "flag": "junk"}])  # fmt: skip
    golden = w.golden(mid(1))
    assert golden["email"] == "ann@x.com"
    assert golden["emails"] == ["ann@x.com"]


def test_address_is_taken_whole_from_one_record(world: Callable[..., World]) -> None:
    w = world()
    w.customer("pos", "p1", mid(1), address_line1="1 High St", city="Leeds", postcode="LS1 1AA",
               updated_at=day(1))  # fmt: skip
    w.customer("web", "w1", mid(1), city="York", updated_at=day(9))
    golden = w.golden(mid(1))
    assert (golden["address_line1"], golden["city"], golden["postcode"]) == (None, "York", None)
    assert golden["provenance"]["city"]["source_id"] == "w1"
    assert "postcode" not in golden["provenance"]


def test_consents_merge_per_channel_and_the_latest_decision_wins(
    world: Callable[..., World],
) -> None:
    w = world()
    w.customer("pos", "p1", mid(1), updated_at=day(9), consents={
        "email": {"granted": True, "at": day(3).isoformat(), "source": "pos"},
        "sms": {"granted": True, "source": "pos"},  # no time of its own: the record's (day 9)
    })  # fmt: skip
    w.customer("news", "n1", mid(1), updated_at=day(1), consents={
        "email": {"granted": False, "at": day(4).isoformat(), "source": "news"},
        "sms": {"granted": False, "at": day(8).isoformat(), "source": "news"},
        "post": {"granted": True, "at": day(2).isoformat(), "source": "news"},
    })  # fmt: skip
    consents = w.golden(mid(1))["consents"]
    assert consents["email"] == {
        "granted": False, "at": day(4).isoformat(), "source": "news", "source_id": "n1"
    }  # fmt: skip
    assert consents["sms"]["granted"] is True and consents["sms"]["source"] == "pos"
    assert consents["post"]["granted"] is True


def test_a_withdrawal_wins_a_tie(world: Callable[..., World]) -> None:
    w = world()
    at = day(4).isoformat()
    w.customer("pos", "p1", mid(1), consents={"email": {"granted": True, "at": at}})
    w.customer("web", "w1", mid(1), consents={"email": {"granted": False, "at": at}})
    assert w.golden(mid(1))["consents"]["email"]["granted"] is False


def test_provenance_names_the_record_the_rule_and_the_time(world: Callable[..., World]) -> None:
    w = world("version: 1\nfields:\n  birth_date: most_frequent\n")
    w.customer("pos", "p1", mid(1), first_name="Ann", birth_year=1990, birth_month=5,
               birth_day=17, updated_at=day(3))  # fmt: skip
    w.customer("web", "w1", mid(1), last_name="Lee", updated_at=None, created_at=day(2))
    prov = w.golden(mid(1))["provenance"]
    expected = {"source": "pos", "source_id": "p1", "at": day(3).isoformat()}
    assert prov["first_name"] == {**expected, "rule": "most_recent"}
    assert prov["birth_year"] == prov["birth_day"] == {**expected, "rule": "most_frequent"}
    assert prov["last_name"] == {"source": "web", "source_id": "w1",
                                 "at": day(2).isoformat(), "rule": "most_recent"}  # fmt: skip
    assert set(prov) == {"first_name", "last_name", "birth_year", "birth_month", "birth_day"}


def test_emails_and_phones_list_every_distinct_usable_value(world: Callable[..., World]) -> None:
    w = world()
    w.customer("pos", "p1", mid(1), email="a@x.com", updated_at=day(1), phone="+447700900001",
               phones=[{"e164": "+447700900001", "raw": "07700 900001", "flag": None},
                       {"e164": None, "raw": "123", "flag": "invalid"}])  # fmt: skip
    both = [{"email": "b@x.com", "flag": None}, {"email": "a@x.com", "flag": None}]
    w.customer("web", "w1", mid(1), email="b@x.com", updated_at=day(2), emails=both)
    golden = w.golden(mid(1))
    assert golden["emails"] == ["b@x.com", "a@x.com"]
    assert golden["phones"] == ["+447700900001"]
