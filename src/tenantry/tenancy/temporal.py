"""The tenant crosses Temporal in headers: from the client to the workflow, from the workflow to
its activities, where it becomes the tenant context again (samples-python's context propagation).

Workflows carry their tenant in their input too; the header is what makes `current_tenant()`
true inside every activity without each one having to remember.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any

import temporalio.api.common.v1
import temporalio.client
import temporalio.converter
import temporalio.worker

from tenantry.tenancy.context import TenantRef, current_tenant_or_none, tenant_context

HEADER = "tenantry-tenant"
_converter = temporalio.converter.default().payload_converter


def _with_tenant_header(
    headers: Mapping[str, temporalio.api.common.v1.Payload], tenant: TenantRef | None
) -> Mapping[str, temporalio.api.common.v1.Payload]:
    if tenant is None:
        return headers
    value = {"id": str(tenant.id), "slug": tenant.slug, "tier": tenant.tier}
    return {**headers, HEADER: _converter.to_payload(value)}


def tenant_from_headers(
    headers: Mapping[str, temporalio.api.common.v1.Payload],
) -> TenantRef | None:
    payload = headers.get(HEADER)
    if payload is None:
        return None
    value: dict[str, Any] = _converter.from_payload(payload)
    return TenantRef(id=uuid.UUID(value["id"]), slug=value["slug"], tier=value["tier"])


@contextmanager
def _context_of(headers):
    tenant = tenant_from_headers(headers)
    if tenant is None:
        yield
        return
    with tenant_context(tenant):
        yield


class TenantInterceptor(temporalio.client.Interceptor, temporalio.worker.Interceptor):
    def intercept_client(
        self, next: temporalio.client.OutboundInterceptor
    ) -> temporalio.client.OutboundInterceptor:
        return _ClientOutbound(next)

    def intercept_activity(
        self, next: temporalio.worker.ActivityInboundInterceptor
    ) -> temporalio.worker.ActivityInboundInterceptor:
        return _ActivityInbound(next)

    def workflow_interceptor_class(self, input: temporalio.worker.WorkflowInterceptorClassInput):
        return _WorkflowInbound


class _ClientOutbound(temporalio.client.OutboundInterceptor):
    async def start_workflow(self, input):
        input.headers = _with_tenant_header(input.headers, current_tenant_or_none())
        return await super().start_workflow(input)

    async def signal_workflow(self, input):
        input.headers = _with_tenant_header(input.headers, current_tenant_or_none())
        return await super().signal_workflow(input)

    async def query_workflow(self, input):
        input.headers = _with_tenant_header(input.headers, current_tenant_or_none())
        return await super().query_workflow(input)


class _ActivityInbound(temporalio.worker.ActivityInboundInterceptor):
    async def execute_activity(self, input):
        with _context_of(input.headers):
            return await self.next.execute_activity(input)


class _WorkflowInbound(temporalio.worker.WorkflowInboundInterceptor):
    """Remembers the workflow's tenant and hands it to every activity it starts."""

    tenant: TenantRef | None = None

    def init(self, outbound: temporalio.worker.WorkflowOutboundInterceptor) -> None:
        self.next.init(_WorkflowOutbound(outbound, self))

    async def execute_workflow(self, input):
        self.tenant = tenant_from_headers(input.headers)
        with _context_of(input.headers):
            return await self.next.execute_workflow(input)

    async def handle_signal(self, input):
        with _context_of(input.headers):
            return await self.next.handle_signal(input)


class _WorkflowOutbound(temporalio.worker.WorkflowOutboundInterceptor):
    def __init__(self, next, inbound: _WorkflowInbound) -> None:
        super().__init__(next)
        self.inbound = inbound

    def start_activity(self, input):
        input.headers = _with_tenant_header(input.headers, self.inbound.tenant)
        return self.next.start_activity(input)

    def start_local_activity(self, input):
        input.headers = _with_tenant_header(input.headers, self.inbound.tenant)
        return self.next.start_local_activity(input)

    async def start_child_workflow(self, input):
        input.headers = _with_tenant_header(input.headers, self.inbound.tenant)
        return await self.next.start_child_workflow(input)
