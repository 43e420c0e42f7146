"""The read API against a real store (SQLite and PostgreSQL) through httpx (TestClient)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from crm_hub.store.schema import api_tokens, audit_log
from tests.api.conftest import ANN, BOB, GONE, OLD_ANN, UNKNOWN, World


def items(response: Any) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


@pytest.mark.parametrize(
    "q",
    ["07911 123456", "+44 7911 123-456", "(07911) 123.456", "447911123456", "+447911123456"],
    ids=["national", "international", "punctuated", "no-plus", "e164"],
)
def test_search_by_phone_in_any_format(world: World, q: str) -> None:
    found = items(world.get("admin", "/customers", params={"q": q}))
    assert [c["master_id"] for c in found] == [ANN]
    assert world.get("admin", "/customers", params={"q": q}).json()["match"] == "phone"


@pytest.mark.parametrize(
    ("q", "match"),
    [
        ("ann.smith@EXAMPLE.com", "email"),
        ("ANN.SMITH@example.com", "email"),
        ("ann", "name_prefix"),
        ("smi", "name_prefix"),
        ("Anne Smiht", "name_fuzzy"),
        (ANN, "id"),
    ],
    ids=["email-domain-case", "email-all-caps", "first-name", "last-name", "typo", "id"],
)
def test_search_by_email_name_and_id(world: World, q: str, match: str) -> None:
    response = world.get("admin", "/customers", params={"q": q})
    assert [c["master_id"] for c in items(response)] == [ANN]
    assert response.json()["match"] == match


def test_search_pages_with_a_cursor_and_caps_the_page_size(world: World) -> None:
    first = world.get("admin", "/customers", params={"q": "example", "limit": 1})
    assert first.json()["items"] == [] and first.json()["next_cursor"] is None
    page = world.get("admin", "/customers", params={"q": "o", "limit": 1})  # nobody: fuzzy too
    assert page.status_code == 200
    capped = world.get("admin", "/customers/" + ANN + "/timeline", params={"limit": 10_000})
    assert capped.json()["limit"] == 3 and len(capped.json()["items"]) == 3


def test_staff_see_masked_contact_preferences_and_no_money(world: World) -> None:
    body = world.get("staff_north", f"/customers/{ANN}").json()
    profile, traits = body["profile"], body["traits"]
    assert profile["email"] == "A***@example.com"
    assert profile["phone"] == "+44*******456"
    assert (profile["birth_month"], profile["birth_day"]) == (4, 2)
    assert traits["allergies"] == "peanuts" and traits["visits_count"] == 2
    assert traits["visits_by_branch"] == {"north": 1}  # another branch's visits are not shown
    for hidden in ("open_balance", "total_spend", "rfm_segment"):
        assert hidden not in traits
    assert "address_line1" not in profile and "provenance" not in profile
    assert {"email", "phone", "open_balance", "provenance"} <= set(body["withheld"])


def test_managers_see_money_and_contact_admins_everything(world: World) -> None:
    manager = world.get("manager_north", f"/customers/{ANN}").json()
    assert manager["traits"]["open_balance"] == "42.5"
    assert manager["profile"]["email"] == "Ann.Smith@example.com"
    assert "provenance" not in manager["profile"]
    admin = world.get("admin", f"/customers/{ANN}").json()
    assert admin["profile"]["provenance"]["email"]["source"] == "pos"
    assert admin["withheld"] == []


def test_etag_answers_304_when_unchanged_and_differs_by_role(world: World) -> None:
    first = world.get("staff_north", f"/customers/{ANN}")
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "private, no-cache"
    again = world.get("staff_north", f"/customers/{ANN}", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other_role = world.get("admin", f"/customers/{ANN}", headers={"If-None-Match": etag})
    assert other_role.status_code == 200 and other_role.headers["ETag"] != etag


def test_merged_id_redirects_to_the_survivor(world: World) -> None:
    for suffix in ("", "/orders", "/timeline"):
        moved = world.get("admin", f"/customers/{OLD_ANN}{suffix}", params={"limit": 1})
        assert moved.status_code == 307
        assert moved.headers["Location"] == f"/customers/{ANN}{suffix}?limit=1"
    followed = world.get("admin", f"/customers/{OLD_ANN}", follow_redirects=True)
    assert followed.status_code == 200 and followed.json()["master_id"] == ANN


@pytest.mark.parametrize("master_id", [UNKNOWN, GONE], ids=["unknown", "erased"])
def test_unknown_and_erased_ids_are_404_problems(world: World, master_id: str) -> None:
    response = world.get("admin", f"/customers/{master_id}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:crm-hub:problem:not-found" and problem["status"] == 404
    assert problem["instance"] == f"/customers/{master_id}"


def test_orders_page_newest_first_with_lines_and_branch_rows(world: World) -> None:
    admin = world.get("admin", f"/customers/{ANN}/orders")
    page1 = items(admin)
    assert [o["source_id"] for o in page1] == ["o3", "o2"]
    assert page1[0]["lines"][0]["product"] == "Flat white" and page1[0]["total"] == "30"
    page2 = world.get(
        "admin", f"/customers/{ANN}/orders", params={"cursor": admin.json()["next_cursor"]}
    )
    assert [o["source_id"] for o in items(page2)] == ["o1"] and page2.json()["next_cursor"] is None
    north = items(world.get("manager_north", f"/customers/{ANN}/orders", params={"limit": 3}))
    assert [o["source_id"] for o in north] == ["o3", "o1"]  # the south order is not north's
    assert north[1]["total"] == "12.5"
    staff = items(world.get("staff_north", f"/customers/{ANN}/orders", params={"limit": 3}))
    assert all("total" not in o and "unit_price" not in o["lines"][0] for o in staff)


def test_timeline_is_one_stream_filtered_by_role(world: World) -> None:
    def kinds(who: str) -> list[str]:
        found: list[str] = []
        cursor = None
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            response = world.get(who, f"/customers/{ANN}/timeline", params=params)
            found += [e["kind"] for e in items(response)]
            cursor = response.json()["next_cursor"]
            if cursor is None:
                return found

    assert kinds("admin") == ["form", "email", "payment", "invoice", "order", "visit", "visit"]
    assert kinds("staff_north") == ["form", "email", "order", "visit"]
    staff = items(world.get("staff_north", f"/customers/{ANN}/timeline", params={"limit": 3}))
    assert all("amount" not in entry for entry in staff)


def test_segment_members_paged_with_entered_at_and_branch_filter(world: World) -> None:
    admin = world.get("admin", "/segments/regulars/members")
    assert len(items(admin)) == 2 and admin.json()["items"][0]["entered_at"].startswith("2026")
    rest = world.get(
        "admin", "/segments/regulars/members", params={"cursor": admin.json()["next_cursor"]}
    )
    everyone = {m["master_id"] for m in items(admin) + items(rest)}
    assert len(everyone) == 3
    north = items(world.get("staff_north", "/segments/regulars/members"))
    assert [m["master_id"] for m in north] == [ANN]
    missing = world.get("admin", "/segments/nope/members")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]


def test_traits_schema_says_what_this_token_sees(world: World) -> None:
    staff = {t["name"]: t for t in world.get("staff_north", "/traits").json()}
    assert staff["allergies"]["access"] == "full" and staff["open_balance"]["access"] is None
    assert staff["total_spend"]["type"] == "decimal" and staff["total_spend"]["description"]
    admin = {t["name"]: t for t in world.get("admin", "/traits").json()}
    assert admin["open_balance"]["access"] == "full"


@pytest.mark.parametrize(
    ("path", "params", "status", "kind"),
    [
        (f"/customers/{ANN}/orders", {"cursor": "not-a-cursor"}, 400, "invalid-cursor"),
        ("/customers", {"q": ""}, 422, "invalid-request"),
        ("/customers/not-an-id", {}, 422, "invalid-request"),
        ("/customers", {"q": "ann", "limit": 0}, 422, "invalid-request"),
        ("/nowhere", {}, 404, "not-found"),
    ],
    ids=["bad-cursor", "empty-q", "bad-id", "zero-limit", "no-route"],
)
def test_bad_requests_are_problem_documents(
    world: World, path: str, params: dict[str, Any], status: int, kind: str
) -> None:
    response = world.get("admin", path, params=params)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == f"urn:crm-hub:problem:{kind}"


def test_a_cursor_from_another_query_is_refused(world: World) -> None:
    page = world.get("admin", f"/customers/{ANN}/orders").json()
    reused = world.get("admin", f"/customers/{BOB}/orders", params={"cursor": page["next_cursor"]})
    assert reused.status_code == 400 and "another query" in reused.json()["detail"]


def test_missing_unknown_and_revoked_tokens_are_401(world: World) -> None:
    bare = world.client.get(f"/customers/{ANN}")
    assert bare.status_code == 401 and bare.headers["WWW-Authenticate"].startswith("Bearer")
    assert bare.headers["content-type"] == "application/problem+json"
    wrong = world.client.get("/traits", headers={"Authorization": "Bearer chub_nope"})
    assert wrong.status_code == 401
    from crm_hub.api.tokens import revoke_token

    with world.store.read() as conn:
        token_id = conn.execute(
            select(api_tokens.c.id).where(api_tokens.c.name == "service")
        ).scalar_one()
    assert world.get("service", "/traits").status_code == 200
    assert revoke_token(world.store, token_id)
    assert world.get("service", "/traits").status_code == 401


def test_explain_answers_the_trace_and_match_the_best_person(world: World) -> None:
    trace = world.get("admin", f"/explain/{ANN}")
    assert trace.status_code == 200
    body = trace.json()
    assert body["master_id"] == ANN and body["status"] == "active"
    assert body["records"] and all("link" in record for record in body["records"])
    assert world.get("staff_north", f"/explain/{ANN}").status_code == 403

    def post(who: str, record: dict[str, Any]) -> Any:
        headers = {"Authorization": f"Bearer {world.tokens[who]}"}
        return world.client.post("/match", json=record, headers=headers)

    assert post("staff_north", {"email": "x@y.z"}).status_code == 403
    unknown = post("service", {"first_name": "Nobody", "email": "nobody@nowhere.test"})
    assert unknown.status_code == 200 and unknown.json()["master_id"] is None
    assert post("service", {"colour": "red"}).status_code == 422


def test_personal_data_reads_are_audited_without_the_query_string(world: World) -> None:
    world.get("staff_north", "/customers", params={"q": "07911 123456"})
    world.get("staff_north", f"/customers/{ANN}")
    world.get("staff_north", f"/customers/{BOB}")  # another branch: denied, still audited
    world.get("staff_north", "/traits")  # no personal data: not audited
    with world.store.read() as conn:
        rows = conn.execute(select(audit_log).order_by(audit_log.c.id)).mappings().all()
    seen = [(r["action"], r["master_id"], r["status"], r["path"]) for r in rows]
    assert seen == [
        ("search", ANN, 200, "/customers"),
        ("read", ANN, 200, f"/customers/{ANN}"),
        ("read", BOB, 404, f"/customers/{BOB}"),
    ]
    assert {(r["role"], r["branch"]) for r in rows} == {("staff", "north")}


def test_openapi_is_published_with_bearer_auth(world: World) -> None:
    spec = world.client.get("/openapi.json").json()
    assert {"/customers", "/customers/{master_id}", "/customers/{master_id}/orders",
            "/customers/{master_id}/timeline", "/segments/{name}/members", "/traits",
            "/explain/{master_id}", "/match"} <= set(spec["paths"])  # fmt: skip
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_every_trait_and_profile_column_has_a_policy_group() -> None:
    from crm_hub.api.lookup import TRAIT_FIELDS
    from crm_hub.api.policy import PROFILE_GROUPS, TRAIT_GROUPS
    from crm_hub.store.schema import profiles

    grouped = {f for groups in (PROFILE_GROUPS, TRAIT_GROUPS) for g in groups.values() for f in g}
    assert set(TRAIT_FIELDS) <= grouped  # a new trait is admin-only until classified here
    bookkeeping = {"master_id", "change_seq", "run_id"}
    assert {c.name for c in profiles.c} - bookkeeping <= grouped


def test_a_phone_search_is_not_kept_in_the_phone_cache() -> None:
    # A server's searches rarely repeat; kept answers only grew what its collector walks.
    from crm_hub.api.lookup import classify
    from crm_hub.normalize.phone import _normalize_text

    kept = _normalize_text.cache_info().currsize
    term = classify("07911 123-457", ("GB",))
    assert term.kind == "phone" and term.values == ("+447911123457",)
    assert _normalize_text.cache_info().currsize == kept
