"""The login throttle at exactly its limit: attempts are counted before the password is checked.

Before, every parallel attempt passed the check, then each verified its password, then each was
counted: 40 wrong passwords in parallel were 40 401s and no 429.
"""

from __future__ import annotations

import httpx
import pytest

from tests.concurrency.conftest import assert_no_5xx, at_once, statuses
from tests.conftest import PASSWORD

ATTEMPTS = 20


def _wrong(tenant, user) -> dict:
    return {"tenant": tenant.slug, "email": user.email, "password": "Wrong-Password-99"}


async def test_parallel_wrong_passwords_get_exactly_the_limit_of_401s(
    client, make_tenant, make_user, settings
):
    tenant = await make_tenant()
    user = await make_user(tenant)
    responses = await at_once(
        *(client.post("/v1/auth/login", json=_wrong(tenant, user)) for _ in range(ATTEMPTS))
    )
    assert_no_5xx(responses)
    limit = settings.login_attempts_per_minute
    assert statuses(responses) == {401: limit, 429: ATTEMPTS - limit}
    refused = next(r for r in responses if r.status_code == 429)
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    # The account stays refused, even with the right password.
    right = await client.post("/v1/auth/login", json={**_wrong(tenant, user), "password": PASSWORD})
    assert right.status_code == 429


async def test_successful_logins_are_not_counted_as_failures(
    client, make_tenant, make_user, settings
):
    tenant = await make_tenant()
    users = [await make_user(tenant) for _ in range(settings.login_attempts_per_minute + 3)]
    good = await at_once(
        *(
            client.post(
                "/v1/auth/login",
                json={"tenant": tenant.slug, "email": u.email, "password": PASSWORD},
            )
            for u in users
        )
    )
    assert statuses(good) == {200: len(users)}  # one address, more logins than the limit


@pytest.mark.slow
async def test_parallel_wrong_passwords_through_a_real_server_sharing_redis(
    api_process, make_tenant, make_user, settings
):
    tenant = await make_tenant()
    user = await make_user(tenant)
    async with httpx.AsyncClient(base_url=api_process, timeout=60) as http:
        responses = await at_once(
            *(http.post("/v1/auth/login", json=_wrong(tenant, user)) for _ in range(ATTEMPTS))
        )
    assert_no_5xx(responses)
    limit = settings.login_attempts_per_minute
    assert statuses(responses) == {401: limit, 429: ATTEMPTS - limit}
