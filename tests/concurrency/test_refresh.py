"""Simultaneous refreshes of one refresh token leave the user logged in, in one session.

Before, the second of two refreshes at the same instant was taken for a stolen token: it revoked
the session, and with it the tokens the first had just been given.
"""

from __future__ import annotations

from tests.concurrency.conftest import assert_no_5xx, at_once, statuses
from tests.conftest import bearer, login

PARALLEL = 10


async def _refresh(client, token: str):
    return await client.post("/v1/auth/refresh", json={"refresh_token": token})


def _sessions(admin_sql, user) -> list[tuple]:
    return admin_sql.execute(
        "SELECT family_id, bool_or(revoked_at IS NOT NULL) FROM refresh_tokens "
        "WHERE user_id = %s GROUP BY family_id",
        [user.id],
    ).fetchall()


async def test_simultaneous_refreshes_leave_one_working_session(
    client, make_tenant, make_user, admin_sql
):
    tenant = await make_tenant()
    user = await make_user(tenant)
    first = await login(client, tenant, user)
    responses = await at_once(*(_refresh(client, first["refresh_token"]) for _ in range(PARALLEL)))
    assert_no_5xx(responses)
    assert statuses(responses) == {200: PARALLEL}, [r.text for r in responses]
    pairs = [r.json() for r in responses]
    for pair in pairs:
        me = await client.get("/v1/me", headers=bearer(pair["access_token"]))
        assert me.status_code == 200
    # The client keeps one of the new tokens and goes on with it.
    kept = pairs[-1]["refresh_token"]
    onward = await _refresh(client, kept)
    assert onward.status_code == 200
    assert (
        await client.get("/v1/me", headers=bearer(onward.json()["access_token"]))
    ).status_code == 200
    [(_, revoked)] = _sessions(admin_sql, user)  # one session, alive
    assert revoked is False


async def test_a_discarded_sibling_used_later_revokes_the_session(
    client, make_tenant, make_user, admin_sql
):
    tenant = await make_tenant()
    user = await make_user(tenant)
    first = await login(client, tenant, user)
    kept, discarded = [
        r.json() for r in await at_once(*(_refresh(client, first["refresh_token"]) for _ in "ab"))
    ]
    onward = (await _refresh(client, kept["refresh_token"])).json()
    late = await _refresh(client, discarded["refresh_token"])
    assert late.status_code == 401
    assert (await client.get("/v1/me", headers=bearer(onward["access_token"]))).status_code == 401
