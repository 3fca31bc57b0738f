"""Talking to a tenant's OpenID provider under the egress policy: discovery, the code exchange
and ID-token verification (Authlib's protocol pieces, joserfc's signatures).

Discovery documents and key sets are cached per issuer; a token signed with a key id the cache
does not know makes the key set be fetched again (the provider rotated its keys), but at most
once per `KEY_REFETCH_COOLDOWN_SECONDS` per issuer, so tokens with made-up key ids cannot make
this platform hammer a provider.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from authlib.oauth2.rfc6749.parameters import prepare_token_request
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry, extract_compact

from tenantry.egress.http import exchange, outbound_client
from tenantry.egress.policy import EgressError, EgressPolicy

METADATA_SECONDS = 3600
KEYS_SECONDS = 3600
KEY_REFETCH_COOLDOWN_SECONDS = 30
MAX_DOCUMENT_BYTES = 256_000
ASYMMETRIC = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
LEEWAY_SECONDS = 60


class ProviderError(EgressError):
    """The provider answered, but not as OpenID Connect says it must."""


class TokenRejected(Exception):
    """The ID token is not one this tenant's connection accepts."""


@dataclass
class _Keys:
    keys: KeySet
    fetched_at: float


@dataclass
class KeyCache:
    """A key set per issuer: fetched once, again when it is old, and on an unknown key id at
    most once per cooldown."""

    fetch: Callable[[str], Awaitable[dict]]
    clock: Callable[[], float] = time.monotonic
    cooldown: float = KEY_REFETCH_COOLDOWN_SECONDS
    _by_uri: dict[str, _Keys] = field(default_factory=dict)

    async def keys_for(self, jwks_uri: str, kid: str | None) -> KeySet:
        cached = self._by_uri.get(jwks_uri)
        now = self.clock()
        if cached is None or now - cached.fetched_at > KEYS_SECONDS:
            return await self._refresh(jwks_uri)
        unknown = kid is not None and not _has(cached.keys, kid)
        if unknown and now - cached.fetched_at >= self.cooldown:
            return await self._refresh(jwks_uri)  # the provider may have rotated its keys
        return cached.keys

    async def _refresh(self, jwks_uri: str) -> KeySet:
        try:
            keys = KeySet.import_key_set(await self.fetch(jwks_uri))
        except (JoseError, ValueError, TypeError, KeyError) as error:
            raise ProviderError(f"the provider's key set is not valid ({error})") from error
        self._by_uri[jwks_uri] = _Keys(keys, self.clock())
        return keys


def _has(keys: KeySet, kid: str) -> bool:
    return any(key.kid == kid for key in keys.keys)


class OidcProviders:
    """One per process: caches shared by every tenant's connection."""

    def __init__(self, policy: EgressPolicy, *, timeout: float) -> None:
        self.policy = policy
        self.timeout = timeout
        self._metadata: dict[str, tuple[dict, float]] = {}
        self.key_cache = KeyCache(self._get_json)

    async def _get_json(self, url: str) -> Any:
        async with outbound_client(self.policy, timeout=self.timeout) as client:
            reply = await exchange(
                client,
                "GET",
                url,
                max_bytes=MAX_DOCUMENT_BYTES,
                deadline=self.timeout,
                headers={"Accept": "application/json"},
            )
        if not reply.ok:
            raise ProviderError(f"{url} answered HTTP {reply.status}")
        try:
            return reply.json()
        except ValueError as error:
            raise ProviderError(f"{url} did not answer JSON") from error

    async def metadata(self, issuer: str) -> dict:
        cached = self._metadata.get(issuer)
        if cached is not None and time.monotonic() - cached[1] < METADATA_SECONDS:
            return cached[0]
        # OpenID Connect Discovery 1.0, section 4: a trailing slash of the issuer is dropped
        # before the path is appended (Auth0's issuers end in one); `iss` is still compared whole.
        document = await self._get_json(issuer.rstrip("/") + "/.well-known/openid-configuration")
        if not isinstance(document, dict) or document.get("issuer") != issuer:
            raise ProviderError("the discovery document names another issuer")
        for needed in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(document.get(needed), str):
                raise ProviderError(f"the discovery document has no {needed}")
        self._metadata[issuer] = (document, time.monotonic())
        return document

    async def redeem(
        self,
        metadata: dict,
        *,
        client_id: str,
        client_secret: str,
        code: str,
        code_verifier: str,
        redirect_uri: str,
    ) -> dict:
        """The authorization code for tokens, with the PKCE verifier (client_secret_basic)."""
        body = prepare_token_request(
            "authorization_code",
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=code_verifier,
        )
        basic = base64.b64encode(
            f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}".encode()
        )
        async with outbound_client(self.policy, timeout=self.timeout) as client:
            reply = await exchange(
                client,
                "POST",
                metadata["token_endpoint"],
                content=body,
                headers={
                    "Authorization": f"Basic {basic.decode()}",
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Accept": "application/json",
                },
                max_bytes=MAX_DOCUMENT_BYTES,
                deadline=self.timeout,
            )
        try:
            tokens = reply.json()
        except ValueError:
            tokens = {}
        if not reply.ok or not isinstance(tokens, dict) or "id_token" not in tokens:
            error = tokens.get("error", f"HTTP {reply.status}") if isinstance(tokens, dict) else ""
            raise TokenRejected(f"the provider refused the code ({error})")
        return tokens

    async def verify(
        self,
        metadata: dict,
        tokens: dict,
        *,
        issuer: str,
        client_id: str,
        nonce: str,
    ) -> dict:
        """The ID token's claims, once its signature, issuer, audience, times, nonce and
        access-token hash check out."""
        raw = tokens["id_token"]
        algorithms = [
            a
            for a in metadata.get("id_token_signing_alg_values_supported", ["RS256"])
            if a in ASYMMETRIC
        ] or ["RS256"]
        try:
            kid = extract_compact(raw.encode()).protected.get("kid")  # which key, before checking
        except (JoseError, ValueError, AttributeError) as error:
            raise TokenRejected("the ID token is not a signed JWT") from error
        keys = await self.key_cache.keys_for(metadata["jwks_uri"], kid)
        try:
            token = jwt.decode(raw, keys, registry=JWSRegistry(algorithms=algorithms))
        except JoseError as error:
            raise TokenRejected(
                f"the ID token's signature does not check out ({error.error})"
            ) from error
        claims = CodeIDToken(
            token.claims,
            token.header,
            {
                "iss": {"essential": True, "value": issuer},
                "aud": {"essential": True, "value": client_id},
            },
            {"nonce": nonce, "client_id": client_id, "access_token": tokens.get("access_token")},
        )
        try:
            claims.validate(leeway=LEEWAY_SECONDS)
        except JoseError as error:
            raise TokenRejected(
                f"the ID token is not valid here ({error.error}: {error.description})"
            ) from error
        if claims.get("nonce") != nonce:
            raise TokenRejected("the ID token's nonce is not this sign-in's")
        return dict(claims)
