"""OIDC single sign-on per tenant: each tenant's own connection (issuer, client, allowed email
domains, claim-to-role map), and the authorization code flow with PKCE, state and nonce.

`start` remembers the sign-in (state, nonce, PKCE verifier, bound to the browser by a cookie)
and sends the browser to the provider; `finish` takes the state once (a replay finds nothing),
redeems the code, verifies the ID token, and signs the user in through `sso_accounts`. No
transaction is open while the provider is asked.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from cryptography.exceptions import InvalidTag
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.base import utcnow
from tenantry.egress.policy import EgressPolicy
from tenantry.errors import AppError, Forbidden, NotFound, Unauthorized, ValidationFailed
from tenantry.identity.models import OidcConfig, OidcLogin
from tenantry.identity.oidc_secrets import seal, unseal
from tenantry.identity.permissions import ROLE_RANK
from tenantry.identity.schemas import OidcConfigIn
from tenantry.identity.sso_accounts import Configurer, SignIn
from tenantry.identity.sso_config import check_mapping, remove_connection, save_connection
from tenantry.tenancy.subjects import Subject
from tenantry.tenants.models import Tenant

SIGN_IN_SECONDS = 600
SCOPE = "openid email profile"


class OidcNotConfigured(NotFound):
    code, title = "oidc-not-configured", "No OIDC sign-in for this tenant"


class SignInRefused(Unauthorized):
    code, title = "oidc-sign-in-refused", "The sign-in was refused"


class DomainNotAllowed(Forbidden):
    code, title = "sso-domain-not-allowed", "This email domain may not sign in here"


class SecretUnreadable(AppError):
    status, code, title = 503, "oidc-secret-unreadable", "The client secret cannot be read"


@dataclass(frozen=True)
class Connection:
    """What a sign-in needs of the tenant's settings, read inside a transaction, used outside."""

    tenant_id: uuid.UUID
    issuer: str
    client_id: str
    client_secret: str
    allowed_domains: tuple[str, ...]
    role_claim: str | None
    role_map: dict[str, str]
    default_role: str | None
    by: Configurer


@dataclass(frozen=True)
class Pending:
    """A sign-in taken from the store: its connection, nonce, verifier and redirect URI."""

    connection: Connection
    nonce: str
    code_verifier: str
    redirect_uri: str


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# Settings ------------------------------------------------------------------------------------


async def get_config(session: AsyncSession, *, tenant_id: uuid.UUID) -> OidcConfig:
    config = await session.get(OidcConfig, tenant_id)
    if config is None:
        raise OidcNotConfigured("OIDC is not configured for this tenant.")
    return config


def check_issuer(policy: EgressPolicy, issuer: str) -> None:
    """Plain http only to a host the operator allowed (a provider on the local network)."""
    if issuer.startswith("http://") and not policy.lists(urlsplit(issuer).hostname or ""):
        raise ValidationFailed(
            "The issuer must be an https URL.",
            errors=[{"field": "body.issuer", "message": "https is required"}],
        )


async def put_config(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    data: OidcConfigIn,
    actor: Subject,
    secrets_key: bytes,
) -> OidcConfig:
    by = check_mapping(actor, [*data.role_map.values(), data.default_role])
    config = await session.get(OidcConfig, tenant_id)
    if data.client_secret is None and (config is None or config.issuer != data.issuer):
        raise ValidationFailed(
            "A client secret is required for a new connection.",
            errors=[{"field": "body.client_secret", "message": "required"}],
        )
    fields = data.model_dump(exclude={"client_secret"})
    fields["allowed_domains"] = sorted(set(data.allowed_domains))
    if data.client_secret is not None:
        fields["client_secret_sealed"] = seal(secrets_key, tenant_id, data.client_secret)
    return await save_connection(
        session,
        model=OidcConfig,
        source="oidc",
        tenant_id=tenant_id,
        fields=fields,
        by=by,
        actor=actor,
        public=public,
    )


async def delete_config(session: AsyncSession, *, tenant_id: uuid.UUID, actor: str) -> None:
    config = await get_config(session, tenant_id=tenant_id)
    await remove_connection(
        session, config=config, source="oidc", tenant_id=tenant_id, actor=actor, public=public
    )
    await session.execute(delete(OidcLogin).where(OidcLogin.tenant_id == tenant_id))


def public(config: OidcConfig) -> dict:
    """What the audit log and the API may show: never the secret."""
    return {
        "issuer": config.issuer,
        "client_id": config.client_id,
        "allowed_domains": list(config.allowed_domains),
        "role_claim": config.role_claim,
        "role_map": dict(config.role_map),
        "default_role": config.default_role,
        "enabled": config.enabled,
    }


# Sign-in -------------------------------------------------------------------------------------


async def live_tenant(session: AsyncSession, *, slug: str) -> Tenant:
    """The tenant as the control plane has it, or 404 (alike for unknown and unconfigured)."""
    tenant = await session.scalar(select(Tenant).where(Tenant.slug == slug))
    if tenant is None or tenant.status in ("deleting", "deleted"):
        raise OidcNotConfigured("OIDC is not configured for this tenant.")
    return tenant


async def connection(session: AsyncSession, *, tenant: Tenant, secrets_key: bytes) -> Connection:
    """The tenant's enabled connection, read in a transaction of the tenant (in its cell), or
    404 as for an unknown tenant."""
    config = await session.get(OidcConfig, tenant.id)
    if config is None or not config.enabled:
        raise OidcNotConfigured("OIDC is not configured for this tenant.")
    try:
        secret = unseal(secrets_key, tenant.id, config.client_secret_sealed)
    except InvalidTag as error:
        raise SecretUnreadable(
            "The connection's client secret cannot be decrypted (the platform's key changed); "
            "an admin must enter it again."
        ) from error
    return Connection(
        tenant_id=tenant.id,
        issuer=config.issuer,
        client_id=config.client_id,
        client_secret=secret,
        allowed_domains=tuple(config.allowed_domains),
        role_claim=config.role_claim,
        role_map=dict(config.role_map),
        default_role=config.default_role,
        by=Configurer.of(config),
    )


async def remember(
    session: AsyncSession,
    *,
    conn: Connection,
    authorization_endpoint: str,
    redirect_uri: str,
) -> tuple[str, str]:
    """Store a new sign-in; returns (the provider URL to send the browser to, the browser
    binding to set as a cookie)."""
    state, nonce, browser = (secrets.token_urlsafe(32) for _ in range(3))
    verifier = secrets.token_urlsafe(64)
    now = utcnow()
    await session.execute(
        delete(OidcLogin).where(OidcLogin.tenant_id == conn.tenant_id, OidcLogin.expires_at < now)
    )
    session.add(
        OidcLogin(
            tenant_id=conn.tenant_id,
            state_hash=digest(state),
            browser_hash=digest(browser),
            nonce=nonce,
            code_verifier=verifier,
            issuer=conn.issuer,
            redirect_uri=redirect_uri,
            expires_at=now + timedelta(seconds=SIGN_IN_SECONDS),
        )
    )
    await session.flush()
    url = prepare_grant_uri(
        authorization_endpoint,
        conn.client_id,
        "code",
        redirect_uri=redirect_uri,
        scope=SCOPE,
        state=state,
        nonce=nonce,
        code_challenge=create_s256_code_challenge(verifier),
        code_challenge_method="S256",
    )
    return url, browser


async def take(
    session: AsyncSession, *, conn: Connection, state: str, browser: str | None
) -> Pending:
    """The sign-in `state` names, removed so that it is used once: unknown, used, expired, from
    another browser or for another issuer, it is refused."""
    login = await session.scalar(
        delete(OidcLogin)
        .where(OidcLogin.tenant_id == conn.tenant_id, OidcLogin.state_hash == digest(state))
        .returning(OidcLogin)
    )
    if login is None or login.expires_at < utcnow():
        raise SignInRefused("This sign-in is unknown, was already used, or has expired.")
    if browser is None or not secrets.compare_digest(digest(browser), login.browser_hash):
        raise SignInRefused("This sign-in was started in another browser.")
    if login.issuer != conn.issuer:
        raise SignInRefused("The tenant's identity provider changed during this sign-in.")
    return Pending(conn, login.nonce, login.code_verifier, login.redirect_uri)


def sign_in_from(conn: Connection, claims: dict) -> SignIn:
    """The claims as a sign-in: a verified email in an allowed domain, a role from the map."""
    email = claims.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise SignInRefused("The provider did not give an email address.")
    if claims.get("email_verified") is not True:
        raise SignInRefused("The provider did not say the email address is verified.")
    domain = email.rsplit("@", 1)[1].lower()
    if domain not in conn.allowed_domains:
        raise DomainNotAllowed(f"Addresses at {domain} may not sign in to this tenant.")
    return SignIn(
        source="oidc",
        issuer=conn.issuer,
        subject=str(claims["sub"]),
        email=email.lower(),
        display_name=claims.get("name") if isinstance(claims.get("name"), str) else None,
        mapped_role=mapped_role(conn, claims),
    )


def mapped_role(conn: Connection, claims: dict) -> str | None:
    """The highest role any value of the role claim maps to, else the default (maybe none)."""
    values = claims.get(conn.role_claim) if conn.role_claim else None
    if isinstance(values, str):
        values = [values]
    roles = [conn.role_map[v] for v in values or [] if isinstance(v, str) and v in conn.role_map]
    if roles:
        return max(roles, key=ROLE_RANK.__getitem__)
    return conn.default_role
