"""`tenantry config …` and `tenantry limits …`: a tenant's configuration and limits from the shell."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from tenantry.cli.common import cli_actor, emit, fail, parse, run_with_db
from tenantry.cli.tenant_scope import tenant_scope
from tenantry.config import service as config_service
from tenantry.config.schemas import VersionOut
from tenantry.limits import service as limits_service
from tenantry.pages import MAX_LIMIT, Page
from tenantry.tenants import cell_changes
from tenantry.tenants import service as tenants
from tenantry.tenants.tiers import LimitsPatch, effective_limits

config_app = typer.Typer(help="Show and change a tenant's configuration.", no_args_is_help=True)
limits_app = typer.Typer(help="Show and override a tenant's limits.", no_args_is_help=True)


def assignments_to_patch(assignments: list[str]) -> dict:
    """`branding.primary_color=#112233 language=spanish llm.model=null` -> a merge patch.

    Values are read as JSON when they parse (numbers, booleans, null), else as text.
    """
    patch: dict = {}
    for item in assignments:
        path, sep, raw = item.partition("=")
        if not sep or not path:
            fail(f"Expected PATH=VALUE, got '{item}'.", code=2)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        node = patch
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return patch


@config_app.command("show")
def show(slug: str) -> None:
    """The effective configuration and where each value comes from."""

    async def work(db, stack):
        async with tenant_scope(db, slug) as (tenant, session):
            eff = await config_service.effective(session, tenant_id=tenant.id, tier=tenant.tier)
        return {"config": eff.config, "sources": eff.sources, "version": eff.tenant_version}

    emit(run_with_db(work))


@config_app.command("set")
def set_(slug: str, assignments: Annotated[list[str], typer.Argument(help="PATH=VALUE …")]) -> None:
    """Change values (a new version); `PATH=null` returns a value to the tier's."""
    patch = assignments_to_patch(assignments)

    async def work(db, stack):
        async with tenant_scope(db, slug) as (tenant, session):
            before, _ = await config_service.tenant_document(session, tenant.id)
            row = await config_service.patch_tenant(
                session,
                tenant_id=tenant.id,
                tier=tenant.tier,
                cache_prefix=tenant.cache_prefix,
                patch=patch,
                author=cli_actor(),
                settings=stack.settings,
                limits=effective_limits(tenant.tier, tenant.limit_overrides),
                by_operator=True,
            )
        # A change that changes nothing writes no version: the current one, and no diff.
        return {"version": row.version, "diff": row.diff if row.version > before else {}}

    emit(run_with_db(work))


@config_app.command("history")
def history(
    slug: str,
    limit: Annotated[int, typer.Option(min=1, max=MAX_LIMIT)] = 20,
    cursor: Annotated[str | None, typer.Option(help="The next_cursor of the last page.")] = None,
) -> None:
    """Versions, newest first, with author and diff, a page at a time."""

    async def work(db, stack):
        async with tenant_scope(db, slug) as (tenant, session):
            rows, next_cursor = await config_service.list_versions(
                session, tenant_id=tenant.id, cursor=cursor, limit=limit
            )
            items = [VersionOut.model_validate(r) for r in rows]
        return Page[VersionOut](items=items, next_cursor=next_cursor, limit=limit)

    emit(run_with_db(work))


@config_app.command("diff")
def diff(slug: str, before: int, after: int) -> None:
    """What changed between two versions (0 is the tier's values alone)."""

    async def work(db, stack):
        async with tenant_scope(db, slug) as (tenant, session):
            return await config_service.diff_versions(
                session, tenant_id=tenant.id, before=before, after=after
            )

    emit(run_with_db(work))


@config_app.command("rollback")
def rollback(slug: str, version: int) -> None:
    """Make VERSION's overrides current again, as a new version."""

    async def work(db, stack):
        async with tenant_scope(db, slug) as (tenant, session):
            row = await config_service.rollback_tenant(
                session,
                tenant_id=tenant.id,
                tier=tenant.tier,
                cache_prefix=tenant.cache_prefix,
                to_version=version,
                author=cli_actor(),
                settings=stack.settings,
                limits=effective_limits(tenant.tier, tenant.limit_overrides),
                by_operator=True,
            )
        return {"version": row.version, "diff": row.diff}

    emit(run_with_db(work))


@config_app.command("tier-set")
def tier_set(
    tier: str, assignments: Annotated[list[str], typer.Argument(help="PATH=VALUE …")]
) -> None:
    """Change a tier's template, inherited by every tenant of the tier."""
    if tier not in ("free", "standard", "enterprise"):
        fail(f"Unknown tier '{tier}'.", code=2)
    patch = assignments_to_patch(assignments)

    async def work(db, stack):
        async with db.control() as session:
            row = await config_service.patch_tier(
                session, tier=tier, patch=patch, author=cli_actor(), settings=stack.settings
            )
        return {"tier": tier, "version": row.version, "diff": row.diff}

    emit(run_with_db(work))


@limits_app.command("show")
def limits_show(slug: str) -> None:
    """The tier's limits, the operator's overrides, and what applies."""

    async def work(db, stack):
        async with db.control() as session:
            return limits_service.limits_view(await tenants.get(session, slug=slug))

    emit(run_with_db(work))


@limits_app.command("set")
def limits_set(
    slug: str, assignments: Annotated[list[str], typer.Argument(help="NAME=VALUE …")]
) -> None:
    """Override limits, e.g. `requests_per_minute=600`; `NAME=null` returns to the tier's."""
    data = parse(LimitsPatch, keep_none=True, **assignments_to_patch(assignments))

    async def work(db, stack):
        async with db.control() as session:
            tenant = await limits_service.set_overrides(
                session, slug=slug, patch=data, actor=cli_actor()
            )
        await cell_changes.apply_owed(db, tenant)
        return limits_service.limits_view(tenant)

    emit(run_with_db(work))
