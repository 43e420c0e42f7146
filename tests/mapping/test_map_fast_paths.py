"""The map stage's shortcuts give exactly what the general path gives.

- ``map_record`` fills plain text fields inline; the field's runner and putter are the reference.
- ``finish_customer`` handles one e-mail or phone without its loop over several.
- The cycle collector is paused per batch and always restored.
"""

from __future__ import annotations

import gc
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_hub.errors import BadRecordError
from crm_hub.mapping.apply import FieldError, StreamPlan, compile_mapping, map_record
from crm_hub.mapping.batches import gc_paused
from crm_hub.mapping.customer import finish_customer
from crm_hub.mapping.spec import load_mapping

MAPPING = """\
version: 1
phone_region: GB
timezone: Europe/London
streams:
  people:
    target: customer
    id: id
    fields:
      title: title
      first_name: first
      last_name: {path: last, transforms: [trim]}
      email: email
      phone: phone
      birth_date: born
      postcode: zip
      branch: branch
      city: {path: city, required: true}
      address_line1: address.line1
      country: country
      updated_at: at
"""
KEYS = ["id", "title", "first", "last", "email", "phone", "born", "zip", "branch", "city",
        "address", "country", "at"]  # fmt: skip


@pytest.fixture(scope="module")
def plans(tmp_path_factory: pytest.TempPathFactory) -> tuple[StreamPlan, StreamPlan]:
    path: Path = tmp_path_factory.mktemp("mapping") / "people.yaml"
    path.write_text(MAPPING)
    fast = compile_mapping(load_mapping(path, "people.yaml"))["people"]
    inline = [key for key, *_ in fast.run_fields if key is not None]
    assert inline == ["title", "first", "email", "phone", "born", "zip", "branch"]
    general = replace(fast, run_fields=tuple((None, *rest[1:]) for rest in fast.run_fields))
    return fast, general


def _outcome(plan: StreamPlan, data: dict[str, Any]) -> Any:
    try:
        mapped = map_record(plan, "src", "k1", data)
    except FieldError as exc:
        return ("field", exc.plan.name, exc.error.reason_code, exc.error.message, repr(exc.value))
    except BadRecordError as exc:
        return ("record", exc.reason_code, exc.message)
    return mapped.table, mapped.row, mapped.lines


_values = st.one_of(
    st.none(),
    st.text(max_size=80),
    st.text(" \t\nab\x00é", max_size=70),
    st.sampled_from(["  Ann ", "", "   ", "x" * 64, "x" * 65, " " + "y" * 32 + " ", "SW1A 1AA"]),
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    st.lists(st.sampled_from(["a", None, " b "]), max_size=3),
    st.dictionaries(st.sampled_from(["line1", "x"]), st.sampled_from(["1 Mill Lane", None, 3])),
)


@settings(max_examples=1_500, deadline=None)
@given(st.fixed_dictionaries({}, optional={key: _values for key in KEYS}))
def test_inline_fields_give_what_the_field_runners_give(
    plans: tuple[StreamPlan, StreamPlan], data: dict[str, Any]
) -> None:
    fast, general = plans
    data.setdefault("id", "c1")
    assert _outcome(fast, data) == _outcome(general, data)


_SOME_EMAILS = ["Ann@Example.COM", "j.smith+x@googlemail.com", "test@example.com", "bad@",
                "n/a", " Bob@Shop.co.uk ", ""]  # fmt: skip
_emails = st.one_of(st.sampled_from(_SOME_EMAILS), st.text(max_size=30))
_phones = st.one_of(
    st.sampled_from(["07911 123456", "+44 7642544369", "0000 000000", "n/a", "+49 30 901820", ""]),
    st.text("+0123456789 ()-", max_size=16),
)


@settings(max_examples=500, deadline=None)
@given(_emails, _phones)
def test_one_email_and_phone_give_what_the_list_gives(email: str, phone: str) -> None:
    alone = {"source_id": "1", "email": email, "phone": phone}
    listed = {"source_id": "1", "email": None, "emails": [email], "phone": None, "phones": [phone]}
    finish_customer(alone, "GB")
    finish_customer(listed, "GB")
    assert alone == listed


def test_the_collector_is_paused_per_batch_and_always_restored() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # an inner pause does not end the outer one
    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("a failed batch")
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()
