"""Temporal namespaces: the platform's (`TENANTRY_TEMPORAL_NAMESPACE`) and a tenant's own,
`tenant-{slug}`, where an operator asks for one (`features.own_namespace`, with dedicated workers).

One connection serves them all: the client of a namespace shares the platform client's service
client, interceptors and data converter. A tenant's namespace is registered, with the platform
namespace's retention and the `TenantId` search attribute, the first time this process sends work
to it. A workflow stays in the namespace it started in, so while a tenant changes, its workflows
may be in either: `clients_of` says where to look, where its new work goes first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, DeleteNamespaceRequest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from tenacity import retry, retry_if_exception, stop_after_delay, wait_exponential

from tenantry.tenants.namespaces import temporal_namespace
from tenantry.worker.queues import TENANT_ID

T = TypeVar("T")


class Namespaces:
    def __init__(self, platform: Client) -> None:
        self.platform = platform
        self._clients: dict[str, Client] = {platform.namespace: platform}
        self._registered: set[str] = {platform.namespace}
        self._lock = asyncio.Lock()

    def client(self, namespace: str) -> Client:
        found = self._clients.get(namespace)
        if found is None:
            config = {**self.platform.config(), "namespace": namespace}
            found = self._clients[namespace] = Client(**config)
        return found

    def of_tenant(self, slug: str, *, own: bool) -> str:
        return temporal_namespace(slug, own=own, platform=self.platform.namespace)

    async def ready(self, namespace: str) -> Client:
        """The namespace's client, the namespace registered first if this process has not yet."""
        if namespace not in self._registered:
            async with self._lock:
                if namespace not in self._registered:
                    await register(self.platform, namespace)
                    self._registered.add(namespace)
        return self.client(namespace)

    def clients_of(self, slug: str, *, own: bool) -> list[Client]:
        """Every namespace the tenant's workflows may be in, the one its new work goes to first."""
        names = [self.of_tenant(slug, own=own), self.of_tenant(slug, own=not own)]
        return [self.client(name) for name in names]


async def first_found(clients: list[Client], call: Callable[[Client], Awaitable[T]]) -> T:
    """`call` in each namespace in turn until one has the workflow (or the namespace itself):
    NOT_FOUND from them all is raised as the last one's."""
    for n, client in enumerate(clients):
        try:
            return await call(client)
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND or n == len(clients) - 1:
                raise
    raise ValueError("no namespace to look in")


def _throttled(error: BaseException) -> bool:
    return isinstance(error, RPCError) and error.status == RPCStatusCode.RESOURCE_EXHAUSTED


# Temporal rate-limits namespace registration: a burst of them (many tenants asking at once)
# waits its turn rather than failing the round that asked.
@retry(
    retry=retry_if_exception(_throttled),
    wait=wait_exponential(multiplier=0.2, max=2),
    stop=stop_after_delay(20),
    reraise=True,
)
async def register(platform: Client, namespace: str) -> None:
    """Register `namespace` (kept as long as the platform's) with the `TenantId` search
    attribute; one that exists already is fine."""
    described = await platform.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=platform.namespace)
    )
    try:
        await platform.workflow_service.register_namespace(
            RegisterNamespaceRequest(
                namespace=namespace,
                description="A Tenantry tenant's own namespace",
                workflow_execution_retention_period=described.config.workflow_execution_retention_ttl,
            )
        )
    except RPCError as error:
        if error.status != RPCStatusCode.ALREADY_EXISTS:
            raise
    try:
        await platform.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=namespace,
                search_attributes={TENANT_ID.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD},
            )
        )
    except RPCError as error:
        if error.status != RPCStatusCode.ALREADY_EXISTS:
            raise


async def delete(platform: Client, namespace: str) -> bool:
    """Delete a tenant's namespace (Temporal removes its workflows' history in the background);
    False when there was none."""
    try:
        await platform.operator_service.delete_namespace(
            DeleteNamespaceRequest(namespace=namespace)
        )
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        return False
    return True
