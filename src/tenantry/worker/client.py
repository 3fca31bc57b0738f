"""The platform's Temporal client: the tenant interceptor on everything it starts."""

from __future__ import annotations

from temporalio.client import Client

from tenantry.tenancy.temporal import TenantInterceptor


async def connect(address: str, namespace: str = "default") -> Client:
    # Interceptors given to the client also apply to every worker built on it.
    return await Client.connect(address, namespace=namespace, interceptors=[TenantInterceptor()])
