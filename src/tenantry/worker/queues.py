"""Task queues and starting tenant workflows by the platform's conventions.

Workflow ids are `{tenant}/{kind}/{id}`; every workflow carries the `TenantId` search attribute;
pool tenants share one queue and are dispatched fairly by a fairness key (the tenant) weighted by
their tier; a tenant whose configuration asks for dedicated workers gets `tenant-{slug}-jobs`.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    Priority,
    SearchAttributeKey,
    SearchAttributePair,
    TypedSearchAttributes,
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
    kind: str,
    object_id: str,
    task_queue: str,
    id_reuse_policy: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
) -> WorkflowHandle:
    with tenant_context(tenant):  # the interceptor puts it in the headers
        return await client.start_workflow(
            workflow,
            arg,
            id=workflow_id(tenant.slug, kind, object_id),
            task_queue=task_queue,
            id_reuse_policy=id_reuse_policy,
            search_attributes=TypedSearchAttributes([SearchAttributePair(TENANT_ID, tenant.slug)]),
            priority=Priority(
                fairness_key=tenant.slug, fairness_weight=TIERS[tenant.tier].fairness_weight
            ),
        )
