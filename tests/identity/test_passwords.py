"""Password policy (seed 003 plus common-password refusal) and argon2id hashing."""

from __future__ import annotations

import pytest

from tenantry.identity.passwords import hash_password, policy_violations, verify_password


@pytest.mark.parametrize(
    ("password", "rule"),
    [
        ("Short1A", "min_length"),
        ("no-upper-case-1234", "uppercase"),
        ("NO-LOWER-CASE-1234", "lowercase"),
        ("No-Digits-Here-At-All", "digit"),
        ("Password1234", "common"),
        ("Qwerty123456", "common"),
    ],
)
def test_each_rule_is_named(password, rule):
    assert [v.split(":")[0] for v in policy_violations(password)] == [rule]


def test_a_good_password_passes():
    assert policy_violations("Correct-Horse-42-Battery") == []


async def test_argon2id_round_trip():
    hashed = await hash_password("Correct-Horse-42-Battery")
    assert hashed.startswith("$argon2id$")
    assert await verify_password(hashed, "Correct-Horse-42-Battery")
    assert not await verify_password(hashed, "Correct-Horse-42-Batterx")
    assert not await verify_password(None, "anything")


async def test_the_api_says_which_rule_failed(client, make_tenant, make_user):
    from tests.conftest import bearer, login

    tenant = await make_tenant()
    admin = await make_user(tenant, "admin")
    tokens = await login(client, tenant, admin)
    response = await client.post(
        "/v1/users",
        json={"email": "weak@example.com", "password": "alllowercase1", "role": "member"},
        headers=bearer(tokens["access_token"]),
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"].endswith("/weak-password")
    assert problem["errors"] == [
        {"field": "body.password", "message": "uppercase: the password needs an upper-case letter"}
    ]
