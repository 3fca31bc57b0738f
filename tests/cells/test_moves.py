"""Moving a tenant through the admin API while it reads and writes: nothing lost, nothing
duplicated, writes held for a moment answer 503 `tenant-moving` and go through on retry, and
no other tenant ever sees its rows."""

from __future__ import annotations

import asyncio
import os

import psycopg
import pytest

from tenantry.db.urls import libpq_dsn
from tests.cells.conftest import cell_admin_url, count_rows
from tests.conftest import all_items, bearer, login
from tests.workflows import started

MOVING = "https://tenantry.dev/problems/tenant-moving"


async def create_incident(client, headers, title: str) -> tuple[dict, int]:
    """POST until it is taken: (the incident, how many 503 tenant-moving answers came first)."""
    held = 0
    while True:
        response = await client.post(
            "/v1/incidents", json={"title": title, "description": "load"}, headers=headers
        )
        if response.status_code != 503:
            assert response.status_code == 201, response.text
            return response.json(), held
        assert response.json()["type"] == MOVING, response.text
        assert response.headers["Retry-After"] == "1"
        held += 1
        await asyncio.sleep(0.01)  # pacing the retries, not waiting for anything


async def finished(client, headers, slug: str, move_id: str) -> dict:
    """The move's record once it is done (bounded)."""
    for _ in range(3000):
        response = await client.get(f"/v1/admin/tenants/{slug}/moves/{move_id}", headers=headers)
        assert response.status_code == 200, response.text
        move = response.json()
        assert move["status"] != "failed", move["error"]
        if move["status"] == "done":
            return move
        await asyncio.sleep(0.02)
    raise AssertionError(f"move {move_id} never finished")


async def test_a_move_under_load_loses_and_duplicates_nothing(
    client,
    app,
    worker,
    temporal_client,
    operator_headers,
    stack,
    cell_b,
    make_tenant,
    make_user,
):
    tenant, neighbour = await make_tenant(), await make_tenant()
    headers = bearer(
        (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    )
    theirs = bearer(
        (await login(client, neighbour, await make_user(neighbour, "admin")))["access_token"]
    )
    before = [f"before-{n}" for n in range(20)]
    for title in before:
        await create_incident(client, headers, title)

    moving = asyncio.Event()
    taken: list[str] = []
    held = 0

    async def writer(name: str) -> None:
        nonlocal held
        n = 0
        while not moving.is_set() or n < 3:
            title = f"{name}-{n}"
            _, refused = await create_incident(client, headers, title)
            taken.append(title)
            held += refused
            n += 1

    async def reader() -> int:
        reads = 0
        while not moving.is_set():
            response = await client.get("/v1/incidents", headers=headers)
            assert response.status_code == 200, response.text
            reads += 1
        return reads

    writers = [asyncio.create_task(writer(f"w{i}")) for i in range(3)]
    readers = [asyncio.create_task(reader()) for _ in range(2)]
    response = await client.post(
        f"/v1/admin/tenants/{tenant.slug}/moves", json={"cell": cell_b}, headers=operator_headers
    )
    assert response.status_code == 202, response.text
    move = response.json()
    assert (move["source"], move["target"], move["status"]) == ("main", cell_b, "queued")
    await started(temporal_client, f"{tenant.slug}/move/{move['id']}")
    done = await finished(client, operator_headers, tenant.slug, move["id"])
    moving.set()
    await asyncio.gather(*writers)
    assert all(n > 0 for n in await asyncio.gather(*readers))

    assert done["hold_ms"] is not None and done["rows"] > 0
    items = await all_items(client, "/v1/incidents", headers)
    titles = [item["title"] for item in items]
    assert sorted(titles) == sorted(before + taken)  # nothing lost, nothing twice
    numbers = sorted(int(item["number"].removeprefix("INC-")) for item in items)
    assert numbers == list(range(1, len(items) + 1))  # the counter moved with the incidents
    cell = cell_admin_url(stack, cell_b)
    assert count_rows(cell, "incidents", tenant.id) == len(items)
    assert count_rows(stack.admin_url, "incidents", tenant.id) == 0
    seen = [i["title"] for i in await all_items(client, "/v1/incidents", theirs)]
    assert not set(seen) & set(titles)
    # And back through the API: the workflow's start goes through the outbox of the tenant's cell.
    response = await client.post(
        f"/v1/admin/tenants/{tenant.slug}/moves", json={"cell": "main"}, headers=operator_headers
    )
    assert response.status_code == 202, response.text
    back = await finished(client, operator_headers, tenant.slug, response.json()["id"])
    assert (back["source"], back["target"]) == (cell_b, "main")
    assert count_rows(stack.admin_url, "incidents", tenant.id) == len(items)
    assert count_rows(cell, "incidents", tenant.id) == 0
    listed = await client.get(f"/v1/admin/tenants/{tenant.slug}/moves", headers=operator_headers)
    assert [m["id"] for m in listed.json()["items"]] == [back["id"], move["id"]]


async def test_writes_held_by_a_move_answer_503_and_reads_go_on(
    client, stack, make_tenant, make_user
):
    tenant = await make_tenant()
    headers = bearer(
        (await login(client, tenant, await make_user(tenant, "admin")))["access_token"]
    )
    await create_incident(client, headers, "first")
    # What a move's hold does in the source cell: the tenant's exclusive lock.
    with psycopg.connect(libpq_dsn(stack.app_url)) as hold:
        hold.execute("SELECT pg_advisory_xact_lock(tenantry_hold_key(%s))", [tenant.id])
        refused = await client.post(
            "/v1/incidents", json={"title": "held", "description": "x"}, headers=headers
        )
        assert refused.status_code == 503, refused.text
        assert refused.json()["type"] == MOVING
        assert refused.headers["Retry-After"] == "1"
        listed = await client.get("/v1/incidents", headers=headers)
        assert listed.status_code == 200
        assert [i["title"] for i in listed.json()["items"]] == ["first"]
        hold.rollback()
    taken, _ = await create_incident(client, headers, "after")
    assert taken["title"] == "after"


async def test_a_move_to_an_unknown_cell_or_where_it_is_is_refused(
    client, operator_headers, make_tenant, db
):
    tenant = await make_tenant()
    url = f"/v1/admin/tenants/{tenant.slug}/moves"
    unknown = await client.post(url, json={"cell": "nowhere"}, headers=operator_headers)
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["errors"][0]["field"] == "cell"
    nul = await client.post(url, json={"cell": "ma\u0000in"}, headers=operator_headers)
    assert nul.status_code == 422, nul.text
    assert nul.json()["errors"][0]["field"].endswith("cell")
    here = await client.post(url, json={"cell": "main"}, headers=operator_headers)
    assert here.status_code == 409, here.text
    assert here.json()["type"].endswith("tenant-already-in-cell")
    listed = await client.get(url, headers=operator_headers)
    assert listed.json()["items"] == []


async def test_cells_are_listed_and_added_through_the_admin_api(
    client, operator_headers, cell_b, cell_silo
):
    listed = await client.get("/v1/admin/cells", headers=operator_headers)
    assert listed.status_code == 200, listed.text
    names = [c["name"] for c in listed.json()["items"]]
    assert names[0] == "main" and cell_b in names
    kinds = {c["name"]: c["kind"] for c in listed.json()["items"]}
    assert (kinds["main"], kinds[cell_b], kinds[cell_silo]) == ("pool", "pool", "silo")
    for kind in ("island", True, None):  # a cell is a pool or a silo, nothing else
        wrong = await client.post(
            "/v1/admin/cells",
            json={"name": "odd", "database": "odd_db", "kind": kind},
            headers=operator_headers,
        )
        assert wrong.status_code == 422, wrong.text
        assert wrong.json()["errors"][0]["field"] == "body.kind"
    after = await client.get("/v1/admin/cells", headers=operator_headers)
    assert "odd" not in [c["name"] for c in after.json()["items"]]
    bad = await client.post(
        "/v1/admin/cells", json={"name": "Bad Name", "database": "x"}, headers=operator_headers
    )
    assert bad.status_code == 422, bad.text
    assert bad.json()["errors"][0]["field"] == "name"
    # A variable that is unset, or holds something else than a PostgreSQL URL (its value is
    # never repeated), is refused as the cell's location.
    for variable in ("TENANTRY_NO_SUCH_VARIABLE", "PATH", "TENANTRY_TEST_NOT_POSTGRES"):
        with pytest.MonkeyPatch.context() as env:
            env.setenv("TENANTRY_TEST_NOT_POSTGRES", "redis://localhost:6379/0")
            elsewhere = await client.post(
                "/v1/admin/cells",
                json={"name": "far", "url_env": variable},
                headers=operator_headers,
            )
        assert elsewhere.status_code == 422, elsewhere.text
        assert elsewhere.json()["errors"][0]["field"] == "url_env"
        assert os.environ.get("PATH", "\0") not in elsewhere.text
    for database in ("postgres", "template1"):  # the server's own: not a database of a cell
        own = await client.post(
            "/v1/admin/cells", json={"name": "own", "database": database}, headers=operator_headers
        )
        assert own.status_code == 422, own.text
        assert own.json()["errors"][0]["field"] == "database"
    again = await client.post(
        "/v1/admin/cells",
        json={"name": cell_b, "database": cell_b.replace("-", "_")},
        headers=operator_headers,
    )
    assert again.status_code == 409, again.text
