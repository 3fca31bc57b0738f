"""The provider key cache: fetched once, again on an unknown key id, but not more often than the
cooldown allows (made-up key ids must not make this platform hammer a provider)."""

from __future__ import annotations

import pytest
from joserfc.jwk import RSAKey

from tenantry.identity.oidc_provider import KEY_REFETCH_COOLDOWN_SECONDS, KeyCache

URI = "https://idp.example.com/jwks"


def public(kid: str) -> dict:
    return RSAKey.generate_key(2048, parameters={"kid": kid}).as_dict(private=False)


class Provider:
    """The key set a provider publishes now, and how many times it was asked for it."""

    def __init__(self, *kids: str) -> None:
        self.keys = [public(kid) for kid in kids]
        self.fetches = 0

    async def fetch(self, uri: str) -> dict:
        assert uri == URI
        self.fetches += 1
        return {"keys": list(self.keys)}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def kids(keys) -> set[str]:
    return {key.kid for key in keys.keys}


async def test_known_key_ids_are_served_from_the_cache(clock):
    provider = Provider("one")
    cache = KeyCache(provider.fetch, clock=clock)
    for _ in range(3):
        assert kids(await cache.keys_for(URI, "one")) == {"one"}
    assert provider.fetches == 1


async def test_an_unknown_key_id_refetches_once_per_cooldown(clock):
    provider = Provider("one")
    cache = KeyCache(provider.fetch, clock=clock)
    await cache.keys_for(URI, "one")
    provider.keys.append(public("two"))  # the provider rotated its keys
    clock.now += KEY_REFETCH_COOLDOWN_SECONDS
    assert kids(await cache.keys_for(URI, "two")) == {"one", "two"}
    assert provider.fetches == 2
    # Made-up key ids within the cooldown: no more requests to the provider.
    for n in range(20):
        assert kids(await cache.keys_for(URI, f"made-up-{n}")) == {"one", "two"}
    assert provider.fetches == 2
    clock.now += KEY_REFETCH_COOLDOWN_SECONDS
    await cache.keys_for(URI, "made-up-again")
    assert provider.fetches == 3
