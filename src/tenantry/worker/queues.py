"""Task queues and starting tenant workflows by the platform's conventions.

Workflow ids are `{tenant}/{kind}/{id}`; every workflow carries the `TenantId` search attribute;
pool tenants share one queue and are dispatched fairly by a fairness key (the tenant) weighted by
their tier; a tenant whose configuration asks for dedicated workers gets `tenant-{slug}-jobs`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    Priority,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from tenantry.tenancy.context import TenantRef, tenant_context
from tenantry.tenants.namespaces import dedicated_task_queue
from tenantry.tenants.tiers import TIERS

TENANT_ID = SearchAttributeKey.for_keyword("TenantId")


def workflow_id(tenant_slug: str, kind: str, object_id: str) -> str:
    return f"{tenant_slug}/{kind}/{object_id}"


def task_queue_for(tenant_slug: str, config: dict[str, Any], pool_queue: str) -> str:
    return (
        dedicated_task_queue(tenant_slug) if config["features"]["dedicated_workers"] else pool_queue
    )


async def start_tenant_workflow(
    client: Client,
    workflow: str,
    arg: Any,
    *,
    tenant: TenantRef,
    task_queue: str,
    kind: str | None = None,
    object_id: str | None = None,
    full_id: str | None = None,
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    id_conflict_policy: WorkflowIDConflictPolicy = WorkflowIDConflictPolicy.UNSPECIFIED,
    rpc_timeout: timedelta | None = None,
) -> WorkflowHandle:
    """Start a workflow of `tenant`, named `full_id` or `{tenant}/{kind}/{object_id}`."""
    with tenant_context(tenant):  # the interceptor puts it in the headers
        return await client.start_workflow(
            workflow,
            arg,
            id=full_id or workflow_id(tenant.slug, kind, object_id),
            task_queue=task_queue,
            id_reuse_policy=id_reuse_policy,
            id_conflict_policy=id_conflict_policy,
            search_attributes=TypedSearchAttributes([SearchAttributePair(TENANT_ID, tenant.slug)]),
            priority=Priority(
                fairness_key=tenant.slug, fairness_weight=TIERS[tenant.tier].fairness_weight
            ),
            rpc_timeout=rpc_timeout,
        )
