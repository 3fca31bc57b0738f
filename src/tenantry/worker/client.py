"""The platform's Temporal client: the tenant interceptor on everything it starts, and each
tenant's payloads encrypted with its own data key."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.runtime import Runtime
from temporalio.service import RetryConfig

from tenantry.keys.codec import TenantPayloadCodec
from tenantry.keys.service import TenantKeys
from tenantry.tenancy.temporal import TenantInterceptor


def data_converter(keys: TenantKeys | None) -> DataConverter:
    if keys is None:
        return DataConverter.default
    # Failure messages and stack traces move into the (encrypted) payloads too.
    return DataConverter(
        payload_codec=TenantPayloadCodec(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect(
    address: str,
    namespace: str = "default",
    *,
    keys: TenantKeys | None = None,
    lazy: bool = False,
    retry: RetryConfig | None = None,
    runtime: Runtime | None = None,
) -> Client:
    # Interceptors given to the client also apply to every worker built on it.
    return await Client.connect(
        address,
        namespace=namespace,
        interceptors=[TenantInterceptor()],
        data_converter=data_converter(keys),
        lazy=lazy,
        retry_config=retry,
        runtime=runtime,
    )
