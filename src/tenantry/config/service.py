"""Per-tenant configuration: platform defaults, then the tier's template, then the tenant's overrides.

Every change (a JSON Merge Patch, or a rollback) is a new version with its author and diff, is
validated as a whole before anything is saved, and tells every API process to drop its cached copy
(NOTIFY is transactional: it is delivered only if the change commits).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config.layers import diff, merge_patch, overlay, sources
from tenantry.config.models import ConfigVersion, TierConfigVersion
from tenantry.config.schema import PLATFORM_DEFAULTS, TenantConfig
from tenantry.db.locks import serialise
from tenantry.db.paging import Keyset, page
from tenantry.errors import NotFound, ValidationFailed
from tenantry.settings import Settings
from tenantry.tenants.tiers import Limits

CHANNEL = "tenantry_config"
EVERYONE = "*"
# A payload on the same channel: a cell was registered, whose changes listeners must hear too.
CELLS = "cells"
# Newest first; a version number is unique within its tenant (or tier).
TENANT_VERSIONS = Keyset("config_versions", (ConfigVersion.version,), descending=True)
TIER_VERSIONS = Keyset("tier_versions", (TierConfigVersion.version,), descending=True)
# Settings only the platform's operators choose (the CLI, a tier's template): moving a tenant to
# dedicated workers routes its work to a queue that only workers an operator starts will serve.
OPERATOR_ONLY = (("features", "dedicated_workers"), ("features", "own_namespace"))


@dataclass(frozen=True)
class Effective:
    config: dict[str, Any]
    sources: dict[str, str]
    tenant_version: int
    tier_version: int


def validate(tier_doc: dict, tenant_doc: dict, *, where: str = "body") -> dict[str, Any]:
    """The effective configuration a change would make, or a 422 naming every bad field path.

    Strict, as JSON is read: `"yes"` is not a boolean and `true` is not a number, so what is
    stored is what was meant.
    """
    document = overlay(PLATFORM_DEFAULTS, tier_doc, tenant_doc)
    try:
        return TenantConfig.model_validate_json(json.dumps(document), strict=True).model_dump(
            mode="json"
        )
    except ValidationError as error:
        fields = [
            {"field": ".".join([where, *(str(p) for p in e["loc"])]), "message": e["msg"]}
            for e in error.errors()
        ]
        raise ValidationFailed(
            "Invalid configuration: " + ", ".join(f["field"] for f in fields) + ".", errors=fields
        ) from None


async def tier_document(session: AsyncSession, tier: str) -> tuple[int, dict]:
    row = await session.scalar(
        select(TierConfigVersion)
        .where(TierConfigVersion.tier == tier)
        .order_by(TierConfigVersion.version.desc())
        .limit(1)
    )
    return (row.version, row.document) if row else (0, {})


async def tenant_document(session: AsyncSession, tenant_id: uuid.UUID) -> tuple[int, dict]:
    row = await session.scalar(
        select(ConfigVersion)
        .where(ConfigVersion.tenant_id == tenant_id)
        .order_by(ConfigVersion.version.desc())
        .limit(1)
    )
    return (row.version, row.document) if row else (0, {})


async def effective(session: AsyncSession, *, tenant_id: uuid.UUID, tier: str) -> Effective:
    tier_version, tier_doc = await tier_document(session, tier)
    tenant_version, tenant_doc = await tenant_document(session, tenant_id)
    config = TenantConfig.model_validate(
        overlay(PLATFORM_DEFAULTS, tier_doc, tenant_doc)
    ).model_dump(mode="json")
    return Effective(config, sources(config, tier_doc, tenant_doc), tenant_version, tier_version)


def check_allowed(config: dict, *, settings: Settings, limits: Limits | None) -> None:
    """Choices the schema alone cannot judge: configured providers, and limits only lowered."""
    errors = []
    if config["embeddings"]["provider"] not in settings.embedding_providers:
        errors.append(
            ("embeddings.provider", f"must be one of {list(settings.embedding_providers)}")
        )
    if config["llm"]["provider"] not in settings.llm_providers:
        errors.append(("llm.provider", f"must be one of {list(settings.llm_providers)}"))
    for name in ("requests_per_minute", "searches_per_minute"):
        wanted = config["limits"][name]
        if limits is not None and wanted is not None and wanted > getattr(limits, name):
            errors.append(
                (f"limits.{name}", f"may only lower the limit of {getattr(limits, name)}")
            )
    _refuse(errors)


def check_own_namespace(config: dict) -> None:
    """An operator's change may give a tenant its own Temporal namespace only with its own
    workers: the pool's workers poll the platform's namespace alone. (A tenant's own changes do
    not move it, and are not refused for what a tier's template did to it since.)"""
    if config["features"]["own_namespace"] and not config["features"]["dedicated_workers"]:
        _refuse(
            [
                (
                    "features.own_namespace",
                    "needs features.dedicated_workers: only the tenant's own workers poll it",
                )
            ]
        )


def check_operator_only(before: dict, after: dict) -> None:
    """A tenant's own change may not move a setting that only operators choose."""
    errors = []
    for path in OPERATOR_ONLY:
        old, new = before, after
        for part in path:
            old, new = old[part], new[part]
        if old != new:
            dotted = ".".join(path)
            errors.append(
                (
                    dotted,
                    f"is chosen by the platform's operators (tenantry config set … {dotted}=…)",
                )
            )
    _refuse(errors)


def _refuse(errors: list[tuple[str, str]]) -> None:
    if errors:
        raise ValidationFailed(
            "Not allowed: " + "; ".join(f"body.{path} {why}" for path, why in errors) + ".",
            errors=[{"field": f"body.{path}", "message": message} for path, message in errors],
        )


async def patch_tenant(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    tier: str,
    cache_prefix: str,
    patch: dict,
    author: str,
    settings: Settings,
    limits: Limits,
    by_operator: bool = False,
) -> ConfigVersion:
    # Changes queue: each merges onto the version the previous one committed.
    await serialise(session, "config", tenant_id)
    version, current = await tenant_document(session, tenant_id)
    return await _save_tenant(
        session,
        tenant_id,
        tier,
        cache_prefix,
        merge_patch(current, patch),
        current,
        version,
        author,
        settings,
        limits,
        by_operator,
    )


async def rollback_tenant(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    tier: str,
    cache_prefix: str,
    to_version: int,
    author: str,
    settings: Settings,
    limits: Limits,
    by_operator: bool = False,
) -> ConfigVersion:
    await serialise(session, "config", tenant_id)
    target = await get_version(session, tenant_id=tenant_id, version=to_version)
    version, current = await tenant_document(session, tenant_id)
    return await _save_tenant(
        session,
        tenant_id,
        tier,
        cache_prefix,
        target.document,
        current,
        version,
        author,
        settings,
        limits,
        by_operator,
    )


async def _save_tenant(
    session,
    tenant_id,
    tier,
    cache_prefix,
    document,
    current,
    version,
    author,
    settings,
    limits,
    by_operator,
):
    if document == current:  # nothing would change: no version, and no notice to caches
        return await get_version(session, tenant_id=tenant_id, version=version)
    _, tier_doc = await tier_document(session, tier)
    config = validate(tier_doc, document)
    check_allowed(config, settings=settings, limits=limits)
    if by_operator:
        check_own_namespace(config)
    else:
        check_operator_only(validate(tier_doc, current), config)
    row = ConfigVersion(
        tenant_id=tenant_id,
        version=version + 1,
        document=document,
        diff=diff(current, document),
        author=author,
    )
    session.add(row)
    await session.flush()
    await notify(session, cache_prefix)
    return row


async def list_versions(
    session: AsyncSession, *, tenant_id: uuid.UUID, cursor: str | None, limit: int
) -> tuple[list[ConfigVersion], str | None]:
    query = select(ConfigVersion).where(ConfigVersion.tenant_id == tenant_id)
    return await page(session, query, keyset=TENANT_VERSIONS, cursor=cursor, limit=limit)


async def get_version(
    session: AsyncSession, *, tenant_id: uuid.UUID, version: int
) -> ConfigVersion:
    if version == 0:
        # Version 0 is "no overrides": what the tenant had before its first change.
        return ConfigVersion(
            tenant_id=tenant_id,
            version=0,
            document={},
            diff={},
            author="platform",
            created_at=datetime.fromtimestamp(0, UTC),
        )
    row = await session.scalar(
        select(ConfigVersion).where(
            ConfigVersion.tenant_id == tenant_id, ConfigVersion.version == version
        )
    )
    if row is None:
        raise NotFound(f"No configuration version {version}.")
    return row


async def diff_versions(
    session: AsyncSession, *, tenant_id: uuid.UUID, before: int, after: int
) -> dict:
    old = await get_version(session, tenant_id=tenant_id, version=before)
    new = await get_version(session, tenant_id=tenant_id, version=after)
    return diff(old.document, new.document)


async def patch_tier(
    session: AsyncSession,
    *,
    tier: str,
    patch: dict | None,
    author: str,
    settings: Settings,
    document: dict | None = None,
) -> TierConfigVersion:
    """Change a tier's template (a patch, or a whole document for a rollback)."""
    await serialise(session, "tier-config", tier)
    version, current = await tier_document(session, tier)
    new_doc = document if document is not None else merge_patch(current, patch or {})
    config = validate(new_doc, {})
    check_allowed(config, settings=settings, limits=None)
    check_own_namespace(config)
    row = TierConfigVersion(
        tier=tier, version=version + 1, document=new_doc, diff=diff(current, new_doc), author=author
    )
    session.add(row)
    await session.flush()
    await notify(session, EVERYONE)
    return row


async def tier_versions(
    session: AsyncSession, *, tier: str, cursor: str | None, limit: int
) -> tuple[list[TierConfigVersion], str | None]:
    query = select(TierConfigVersion).where(TierConfigVersion.tier == tier)
    return await page(session, query, keyset=TIER_VERSIONS, cursor=cursor, limit=limit)


async def rollback_tier(
    session: AsyncSession, *, tier: str, to_version: int, author: str, settings: Settings
) -> TierConfigVersion:
    if to_version == 0:
        document: dict = {}
    else:
        row = await session.get(TierConfigVersion, (tier, to_version))
        if row is None:
            raise NotFound(f"No version {to_version} of the {tier} template.")
        document = row.document
    return await patch_tier(
        session, tier=tier, patch=None, document=document, author=author, settings=settings
    )


async def notify(session: AsyncSession, cache_prefix: str) -> None:
    await session.execute(
        text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": cache_prefix}
    )
