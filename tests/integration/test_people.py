"""People over real SQLite and PostgreSQL: CRUD and lookups through the native API, the CIJ OData
subset, org isolation, the batch existence check, and bulk import."""

from __future__ import annotations

import csv
import dataclasses
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import inspect

from clarion.bootstrap import Container
from clarion.errors import Conflict, InvalidInput, NotFound
from clarion.services import importing, orgs, people
from clarion.store.db import Database

pytestmark = pytest.mark.integration

GUID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"


@dataclasses.dataclass
class Org:
    id: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def base(self) -> str:
        return f"/v1/orgs/{self.id}/people"


async def new_org(c: Container, name: str = "Contoso") -> Org:
    created = await orgs.create_org(db=c.db, clock=c.clock, name=name)
    return Org(created.id, created.admin_token)


async def add(c: Container, org: Org, **data: Any) -> people.PersonRead:
    return await people.create_person(db=c.db, clock=c.clock, settings=c.settings,
                                      org_id=org.id, data=data)


# --- native API ------------------------------------------------------------------------------

async def test_crud_through_the_api(container: Container, client: httpx.AsyncClient) -> None:
    org = await new_org(container)
    r = await client.post(org.base, headers=org.auth, json={
        "email": "Ada@Example.com", "phone": "+33 6 12 34 56 78", "first_name": "Ada",
        "last_name": "Lovelace", "time_zone": "Europe/Paris", "locale": "fr_fr",
        "attributes": {"tier": "gold", "visits": 3, "vip": True}})
    assert r.status_code == 201, r.text
    created = r.json()
    assert uuid.UUID(created["id"])
    assert created["kind"] == "contact"
    assert created["email"] == "ada@example.com"
    assert created["phone"] == "+33612345678"
    assert created["locale"] == "fr-FR"
    assert created["attributes"] == {"tier": "gold", "visits": 3, "vip": True}
    url = f"{org.base}/{created['id']}"

    r = await client.get(url, headers=org.auth)
    assert r.status_code == 200
    assert r.json() == created

    r = await client.patch(url, headers=org.auth,
                           json={"kind": "lead", "phone": None, "attributes": {"tier": "silver"}})
    assert r.status_code == 200, r.text
    updated = r.json()
    assert (updated["kind"], updated["phone"], updated["attributes"]) == ("lead", None,
                                                                          {"tier": "silver"})
    assert updated["email"] == "ada@example.com"
    assert updated["first_name"] == "Ada"
    assert (await client.get(url, headers=org.auth)).json() == updated

    assert (await client.delete(url, headers=org.auth)).status_code == 204
    r = await client.get(url, headers=org.auth)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert (await client.delete(url, headers=org.auth)).status_code == 404


async def test_given_ids_are_kept_and_unique(container: Container,
                                             client: httpx.AsyncClient) -> None:
    org = await new_org(container)
    r = await client.post(org.base, headers=org.auth, json={"id": GUID.upper(), "kind": "lead"})
    assert r.status_code == 201
    assert r.json()["id"] == GUID
    r = await client.post(org.base, headers=org.auth, json={"id": GUID, "email": "x@y.com"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "conflict"
    r = await client.post(org.base, headers=org.auth, json={"id": None, "kind": "profile"})
    assert r.status_code == 201
    assert r.json()["id"] != GUID
    r = await client.patch(f"{org.base}/{GUID}", headers=org.auth, json={"id": GUID})
    assert r.status_code == 422  # id is not an updatable field
    r = await client.post(org.base, headers=org.auth, json={"id": "user-42"})
    assert r.status_code == 400
    assert r.json()["error"]["field"] == "id"


async def test_bad_input_is_a_clear_4xx_and_changes_nothing(container: Container,
                                                            client: httpx.AsyncClient) -> None:
    org = await new_org(container)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"email": "not-an-email"}, "email"),
        ({"phone": "06 12 34 56 78"}, "phone"),
        ({"phone": "+33 6 12"}, "phone"),
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"locale": "french"}, "locale"),
        ({"attributes": {"k" * 101: 1}}, "attributes"),
    ]
    for body, field in cases:
        r = await client.post(org.base, headers=org.auth, json=body)
        assert r.status_code == 400, (body, r.text)
        error = r.json()["error"]
        assert error["field"] == field, error
        assert error["fix"], error
    for body in ({"kind": "customer"}, {"attributes": {"a": {"nested": 1}}}, {"emial": "a@b.c"}):
        r = await client.post(org.base, headers=org.auth, json=body)
        assert r.status_code == 422, (body, r.text)
    page = (await client.get(org.base, headers=org.auth)).json()
    assert page == {"items": [], "next_cursor": None}
    r = await client.patch(f"{org.base}/{GUID}", headers=org.auth, json={"first_name": "x"})
    assert r.status_code == 404


async def test_lookup_by_email_or_any_form_of_the_phone(container: Container,
                                                        client: httpx.AsyncClient) -> None:
    org = await new_org(container)
    ada = await add(container, org, email="ada@example.com", phone="+33612345678")
    await add(container, org, email="bob@example.com", phone="+16502530000", kind="lead")
    for params in ({"email": "ADA@example.com"}, {"phone": "+33 6 12 34 56 78"},
                   {"phone": "0033612345678"}):
        r = await client.get(org.base, headers=org.auth, params=params)
        assert r.status_code == 200, r.text
        assert [p["id"] for p in r.json()["items"]] == [ada.id], params
    r = await client.get(org.base, headers=org.auth, params={"phone": "06 12 34 56 78"})
    assert r.status_code == 400
    assert "CLARION_DEFAULT_PHONE_REGION" in r.json()["error"]["fix"]
    r = await client.get(org.base, headers=org.auth, params={"kind": "lead"})
    assert [p["email"] for p in r.json()["items"]] == ["bob@example.com"]
    r = await client.get(org.base, headers=org.auth, params={"email": "nobody@example.com"})
    assert r.json()["items"] == []


async def test_national_numbers_use_the_default_region(container: Container) -> None:
    org = await new_org(container)
    settings = container.settings.model_copy(update={"default_phone_region": "FR"})
    person = await people.create_person(db=container.db, clock=container.clock,
                                        settings=settings, org_id=org.id,
                                        data={"phone": "06 12 34 56 78"})
    assert person.phone == "+33612345678"
    page = await people.list_people(db=container.db, org_id=org.id, settings=settings,
                                    phone="06.12.34.56.78")
    assert [p.id for p in page.items] == [person.id]


async def test_keyset_pages_cover_everyone_once(container: Container,
                                                client: httpx.AsyncClient) -> None:
    org = await new_org(container)
    ids = {(await add(container, org, email=f"u{i}@x.com")).id for i in range(7)}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = (await client.get(org.base, headers=org.auth, params=params)).json()
        seen += [p["id"] for p in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(ids)
    r = await client.get(org.base, headers=org.auth, params={"limit": 1001})
    assert r.status_code == 422
    r = await client.get(org.base, headers=org.auth, params={"cursor": "garbage"})
    assert r.status_code == 400


async def test_orgs_never_see_each_others_people(container: Container,
                                                 client: httpx.AsyncClient) -> None:
    a, b = await new_org(container, "A"), await new_org(container, "B")
    ada = await add(container, a, email="ada@example.com", kind="contact")
    # B's token on A's paths: as if A did not exist.
    r = await client.get(f"{a.base}/{ada.id}", headers=b.auth)
    assert r.status_code == 404
    # A's person id on B's paths: unknown.
    for method in ("GET", "PATCH", "DELETE"):
        r = await client.request(method, f"{b.base}/{ada.id}", headers=b.auth,
                                 json={} if method == "PATCH" else None)
        assert r.status_code == 404, method
    r = await client.get(b.base, headers=b.auth, params={"email": "ada@example.com"})
    assert r.json()["items"] == []
    r = await client.get("/api/data/v9.0/contacts", headers=b.auth,
                         params={"$filter": "emailaddress1 eq 'ada@example.com'"})
    assert r.status_code == 200
    assert r.json()["value"] == []
    r = await client.get("/api/data/v9.0/contacts", headers=b.auth,
                         params={"$filter": f"contactid eq {ada.id}"})
    assert r.json()["value"] == []
    assert await people.existing_people(db=container.db, org_id=b.id, person_ids=[ada.id]) == {}
    assert (await client.get(f"{a.base}/{ada.id}", headers=a.auth)).status_code == 200


async def test_the_same_id_in_two_orgs(container: Container) -> None:
    a, b = await new_org(container, "A"), await new_org(container, "B")
    await add(container, a, id=GUID)
    pk = await _people_primary_key(container.db)
    if pk == ["org_id", "id"]:
        person = await add(container, b, id=GUID, kind="lead")
        assert person.kind == "lead"
        got = await people.get_person(db=container.db, org_id=a.id, person_id=GUID)
        assert got.kind == "contact"
    else:  # schema from before (org_id, id) became the key: refused, never a 5xx
        with pytest.raises(Conflict):
            await add(container, b, id=GUID)


async def _people_primary_key(db: Database) -> list[str]:
    async with db.read() as conn:
        pk = await conn.run_sync(lambda sync: inspect(sync).get_pk_constraint("people"))
    return list(pk["constrained_columns"])


async def test_existing_people_in_chunks(container: Container) -> None:
    org = await new_org(container)
    rows = [{"id": str(uuid.uuid4()), "type": "lead" if i % 3 == 0 else "contact"}
            for i in range(1200)]
    summary = await importing.import_people(db=container.db, clock=container.clock,
                                            settings=container.settings, org_id=org.id,
                                            rows=rows)
    assert summary.imported == 1200
    asked = [r["id"] for r in rows[::2]] + [str(uuid.uuid4()) for _ in range(300)]
    asked += ["not-a-guid", rows[1]["id"].upper()]
    found = await people.existing_people(db=container.db, org_id=org.id, person_ids=asked)
    expected = {r["id"]: r["type"] for r in rows[::2]}
    expected[rows[1]["id"].upper()] = rows[1]["type"]
    assert found == expected
    assert await people.existing_people(db=container.db, org_id=org.id, person_ids=[]) == {}


async def test_service_errors(container: Container) -> None:
    org = await new_org(container)
    with pytest.raises(NotFound):
        await people.get_person(db=container.db, org_id=org.id, person_id="nope")
    with pytest.raises(NotFound):
        await add(container, Org(str(uuid.uuid4()), ""), email="a@b.com")
    person = await add(container, org, email="a@b.com")
    with pytest.raises(InvalidInput, match="cannot change"):
        await people.update_person(db=container.db, clock=container.clock,
                                   settings=container.settings, org_id=org.id,
                                   person_id=person.id, data={"id": GUID})
    with pytest.raises(InvalidInput):
        await people.list_people(db=container.db, org_id=org.id, limit=0)


# --- CIJ OData -------------------------------------------------------------------------------

async def test_odata_lookup_answers_cij_shape(container: Container,
                                              client: httpx.AsyncClient) -> None:
    org = await new_org(container)
    ada = await add(container, org, email="ada@example.com", phone="+33612345678",
                    first_name="Ada", last_name="O'Brien")
    lead = await add(container, org, email="ada@example.com", kind="lead", first_name="Ada")
    await add(container, org, email="ada@example.com", kind="profile")
    r = await client.get("/api/data/v9.0/contacts", headers=org.auth,
                         params={"$filter": "emailaddress1 eq 'Ada@Example.com'"})
    assert r.status_code == 200, r.text
    assert r.json() == {
        "@odata.context": "http://127.0.0.1:8000/api/data/v9.0/$metadata#contacts",
        "value": [{"contactid": ada.id, "emailaddress1": "ada@example.com",
                   "mobilephone": "+33612345678", "firstname": "Ada", "lastname": "O'Brien"}],
    }
    r = await client.get("/api/data/v9.0/leads", headers=org.auth,
                         params={"$filter": "emailaddress1 eq 'ada@example.com'"})
    assert r.json()["value"] == [{"leadid": lead.id, "emailaddress1": "ada@example.com",
                                  "mobilephone": None, "firstname": "Ada", "lastname": None}]


async def test_odata_filters(container: Container, client: httpx.AsyncClient) -> None:
    org = await new_org(container)
    ada = await add(container, org, email="ada@x.com", phone="+33612345678", first_name="Ada",
                    last_name="O'Brien")
    bob = await add(container, org, email="bob@x.com", first_name="Bob", last_name="Smith")
    cy = await add(container, org, email="cy@x.com", phone="+16502530000", first_name="Cy",
                   last_name="Smith")

    async def ids(expr: str) -> list[str]:
        r = await client.get("/api/data/v9.0/contacts", headers=org.auth,
                             params={"$filter": expr})
        assert r.status_code == 200, (expr, r.text)
        return [row["contactid"] for row in r.json()["value"]]

    assert await ids("mobilephone eq '+33 6 12 34 56 78'") == [ada.id]
    assert await ids("mobilephone eq null") == [bob.id]
    assert await ids("lastname eq 'o''brien'") == [ada.id]  # case-insensitive, like Dataverse
    assert await ids("lastname eq 'Smith' and firstname eq 'cy'") == [cy.id]
    assert sorted(await ids("firstname eq 'Ada' or lastname eq 'Smith' and firstname eq 'Bob'")
                  ) == sorted([ada.id, bob.id])
    assert sorted(await ids("(firstname eq 'Ada' or lastname eq 'Smith') and "
                            "mobilephone eq '+16502530000'")) == [cy.id]
    assert await ids(f"contactid eq {bob.id.upper()}") == [bob.id]
    assert await ids(f"contactid eq '{bob.id}' or contactid eq null") == [bob.id]
    assert await ids("mobilephone eq 'not a number'") == []
    many = " or ".join(f"emailaddress1 eq 'u{i}@x.com'" for i in range(249))
    assert await ids(many + " or emailaddress1 eq 'cy@x.com'") == [cy.id]


async def test_odata_select_and_top(container: Container, client: httpx.AsyncClient) -> None:
    org = await new_org(container)
    made = sorted([(await add(container, org, email=f"u{i}@x.com", first_name="Same")).id
                   for i in range(5)])
    r = await client.get("/api/data/v9.0/contacts", headers=org.auth,
                         params={"$filter": "firstname eq 'Same'", "$select": "emailaddress1",
                                 "$top": "2"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["@odata.context"].endswith("$metadata#contacts(contactid,emailaddress1)")
    assert [list(row) for row in body["value"]] == [["contactid", "emailaddress1"]] * 2
    assert [row["contactid"] for row in body["value"]] == made[:2]
    r = await client.get("/api/data/v9.0/contacts", headers=org.auth)
    assert len(r.json()["value"]) == 5


async def test_odata_refusals_are_400_in_dataverse_shape(container: Container,
                                                         client: httpx.AsyncClient) -> None:
    org = await new_org(container)
    await add(container, org, email="ada@x.com")
    refused = [
        {"$filter": "emailaddress1 ne 'a'"},
        {"$filter": "contains(emailaddress1,'ada')"},
        {"$filter": "emailaddress1 eq 'a"},
        {"$filter": "fullname eq 'Ada'"},
        {"$filter": "leadid eq " + GUID},
        {"$orderby": "emailaddress1"},
        {"$expand": "parentcustomerid"},
        {"$skip": "1"},
        {"$select": "fullname"},
        {"$top": "0"},
        {"$top": "5001"},
        {"$top": "many"},
    ]
    for params in refused:
        r = await client.get("/api/data/v9.0/contacts", headers=org.auth, params=params)
        assert r.status_code == 400, (params, r.text)
        error = r.json()["error"]
        assert error["code"] == "0x80060888", error
        assert error["message"], error
    r = await client.get("/api/data/v9.0/contacts?$top=1&$top=2", headers=org.auth)
    assert r.status_code == 400


async def test_odata_needs_an_admin_token(container: Container,
                                          client: httpx.AsyncClient) -> None:
    r = await client.get("/api/data/v9.0/contacts")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    r = await client.get("/api/data/v9.0/leads", headers={"Authorization": "Bearer clr_adm_x"})
    assert r.status_code == 401


# --- import ----------------------------------------------------------------------------------

def write_people_csv(path: Path, rows: int, bad_every: int) -> tuple[int, dict[str, int]]:
    """A generated CSV; every ``bad_every``-th row is broken in one of four ways. Returns the
    number of bad rows and the per-kind count of the good ones."""
    kinds = ("contact", "lead", "profile")
    bad = 0
    by_kind: dict[str, int] = {}
    with path.open("w", encoding="utf-8", newline="") as out:
        w = csv.writer(out)
        w.writerow(["id", "type", "email", "mobilephone", "firstname", "lastname", "tier",
                    "city"])
        for i in range(rows):
            kind = kinds[i % 3]
            row = [str(uuid.UUID(int=i + 1)), kind, f"u{i}@example.com",
                   f"+3361{i:07d}" if i % 2 else "", f"F{i}", f"L{i}", "gold" if i % 5 else "",
                   "Paris"]
            if i % bad_every == bad_every - 1:
                bad += 1
                flaw = (i // bad_every) % 4
                if flaw == 0:
                    row[2] = "not-an-email"
                elif flaw == 1:
                    row[1] = "customer"
                elif flaw == 2:
                    row[3] = "12"
                else:
                    row[0] = str(uuid.UUID(int=1))  # the id of the first row again
            else:
                by_kind[kind] = by_kind.get(kind, 0) + 1
            w.writerow(row)
    return bad, by_kind


async def test_import_5000_rows_with_some_bad(container: Container, tmp_path: Path) -> None:
    org = await new_org(container)
    path = tmp_path / "people.csv"
    bad, by_kind = write_people_csv(path, 5000, bad_every=97)
    assert importing.count_records(path) == 5000
    progress: list[int] = []
    summary = await importing.import_people(
        db=container.db, clock=container.clock, settings=container.settings, org_id=org.id,
        rows=importing.iter_rows(path), on_progress=progress.append)
    assert summary.imported == 5000 - bad
    assert len(summary.rejected) == bad == 51
    assert summary.by_kind == by_kind
    assert sum(progress) == 5000
    assert len(progress) == 5
    reasons = [r.reason for r in summary.rejected]
    assert sum("is not valid" in r and "email" in r for r in reasons) == 13
    assert sum("not a kind of person" in r for r in reasons) == 13
    assert sum("phone" in r for r in reasons) == 13
    assert sum("already appears on line 2" in r for r in reasons) == 12
    assert summary.rejected[0].line == 98  # row 97 (0-based 96) sits on line 98
    # Everything imported is findable, with its attributes and CIJ columns mapped.
    page = await people.list_people(db=container.db, org_id=org.id, phone="+33610000001")
    [one] = page.items
    assert (one.kind, one.email, one.first_name, one.last_name) == ("lead", "u1@example.com",
                                                                    "F1", "L1")
    assert one.attributes == {"tier": "gold", "city": "Paris"}
    # A second run of the same file adds nobody: every id now exists.
    again = await importing.import_people(
        db=container.db, clock=container.clock, settings=container.settings, org_id=org.id,
        rows=importing.iter_rows(path))
    assert again.imported == 0
    assert len(again.rejected) == 5000
    assert sum("already exists" in r.reason for r in again.rejected) == 5000 - bad


async def test_import_jsonl_with_mixed_rows(container: Container, tmp_path: Path) -> None:
    org = await new_org(container)
    path = tmp_path / "people.jsonl"
    path.write_text(
        '{"type": "profile", "email": "p@x.com", "score": 9.5, "vip": true}\n'
        "\n"
        '{"email": "a@x.com", "nested": {"no": 1}}\n'
        "garbage\n"
        '{"contactid": "' + GUID + '"}\n'
        "{}\n", encoding="utf-8")
    summary = await importing.import_people(
        db=container.db, clock=container.clock, settings=container.settings, org_id=org.id,
        rows=importing.iter_rows(path), chunk_size=2)
    assert summary.imported == 2
    assert summary.by_kind == {"profile": 1, "contact": 1}
    assert [(r.line, r.reason.split(" ")[0]) for r in summary.rejected] == [
        (3, "attribute"), (4, "the"), (6, "the")]
    got = await people.get_person(db=container.db, org_id=org.id, person_id=GUID)
    assert got.kind == "contact"
    assert got.email is None
    page = await people.list_people(db=container.db, org_id=org.id, kind="profile")
    assert page.items[0].attributes == {"score": 9.5, "vip": True}


async def test_import_survives_ids_created_meanwhile(container: Container,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """An id that appears between the existence check and the insert (a concurrent create):
    the chunk is retried row by row in savepoints, and only that row is rejected."""
    org = await new_org(container)
    await add(container, org, id=GUID, email="first@x.com")

    async def nothing_exists(*_args: Any) -> set[str]:
        return set()

    monkeypatch.setattr(importing, "_existing", nothing_exists)
    rows = [{"email": "a@x.com"}, {"id": GUID, "email": "second@x.com"}, {"email": "b@x.com"}]
    summary = await importing.import_people(db=container.db, clock=container.clock,
                                            settings=container.settings, org_id=org.id,
                                            rows=rows)
    assert summary.imported == 2
    assert [(r.line, "already exists" in r.reason) for r in summary.rejected] == [(2, True)]
    got = await people.get_person(db=container.db, org_id=org.id, person_id=GUID)
    assert got.email == "first@x.com"
    page = await people.list_people(db=container.db, org_id=org.id)
    assert sorted(p.email or "" for p in page.items) == ["a@x.com", "b@x.com", "first@x.com"]


def test_count_records_refuses_bad_files_before_anything_is_imported(tmp_path: Path) -> None:
    good = tmp_path / "people.csv"
    good.write_text("\ufeffemail\na@x.com\nb@x.com\n", encoding="utf-8")
    assert importing.count_records(good) == 2
    latin = tmp_path / "latin.csv"
    latin.write_bytes("email\nzoë@x.com\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match="line 2 is not UTF-8"):
        importing.count_records(latin)
    with pytest.raises(InvalidInput, match="neither CSV nor JSON"):
        importing.count_records(tmp_path / "people.xlsx")
    with pytest.raises(InvalidInput, match="does not exist"):
        importing.count_records(tmp_path / "missing.jsonl")


async def test_import_rejects_a_2mb_row_alone_and_keeps_unassigned_phones(
        container: Container, tmp_path: Path) -> None:
    """Issue 10, item 10: one huge cell costs its row (named by its real line), not the file;
    a number libphonenumber parses but does not know is stored in E.164 with a warning."""
    org = await new_org(container)
    path = tmp_path / "people.csv"
    path.write_text("email,phone,note\n"
                    'a@x.com,+33612345678,"two\nlines"\n'      # lines 2-3
                    f"b@x.com,,{'x' * 2_000_000}\n"            # line 4: too large
                    "c@x.com,+1 555 555 0100,unassigned\n"     # line 5
                    "d@x.com,,ok\n", encoding="utf-8")         # line 6
    summary = await importing.import_people(
        db=container.db, clock=container.clock, settings=container.settings, org_id=org.id,
        rows=importing.iter_rows(path))
    assert summary.imported == 3
    [rejected] = summary.rejected
    assert rejected.line == 4
    assert "larger than" in rejected.reason
    [warning] = summary.warnings
    assert warning.line == 5
    assert "+15555550100" in warning.message
    page = await people.list_people(db=container.db, org_id=org.id, phone="+1 555 555 0100")
    [kept] = page.items
    assert (kept.email, kept.phone) == ("c@x.com", "+15555550100")
    page = await people.list_people(db=container.db, org_id=org.id)
    assert sorted(p.email or "" for p in page.items) == ["a@x.com", "c@x.com", "d@x.com"]
