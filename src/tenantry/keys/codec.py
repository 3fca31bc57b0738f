"""The Temporal payload codec: each tenant's payloads encrypted with its own data key (AES-GCM).

The tenant is the first segment of the workflow id (`{tenant}/{kind}/{id}`), which Temporal gives
the codec as its serialization context; an encrypted payload names its key's tenant, so decoding
needs no context. Payloads of workflows that belong to no tenant pass through unchanged. Once a
tenant's key is destroyed, its payloads neither decode nor encode.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    ActivitySerializationContext,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)

from tenantry.keys.service import TenantKeys, seal, unseal

ENCODING = b"binary/tenantry-encrypted"
KEY_ID = "tenantry-key"


class TenantPayloadCodec(PayloadCodec, WithSerializationContext):
    def __init__(self, keys: TenantKeys, workflow_id: str | None = None) -> None:
        self.keys = keys
        self.workflow_id = workflow_id

    def with_context(self, context: SerializationContext) -> TenantPayloadCodec:
        if isinstance(context, WorkflowSerializationContext | ActivitySerializationContext):
            return TenantPayloadCodec(self.keys, context.workflow_id)
        return self

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        tenant_id = await self._tenant()
        if tenant_id is None:
            return list(payloads)
        key = await self.keys.key(tenant_id, create=True)
        return [
            Payload(
                metadata={"encoding": ENCODING, KEY_ID: str(tenant_id).encode()},
                data=seal(key, p.SerializeToString(), aad=tenant_id.bytes),
            )
            for p in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        decoded = []
        for payload in payloads:
            if payload.metadata.get("encoding") != ENCODING:
                decoded.append(payload)
                continue
            tenant_id = uuid.UUID(payload.metadata[KEY_ID].decode())
            key = await self.keys.key(tenant_id, create=False)
            decoded.append(Payload.FromString(unseal(key, payload.data, aad=tenant_id.bytes)))
        return decoded

    async def _tenant(self) -> uuid.UUID | None:
        if not self.workflow_id or "/" not in self.workflow_id:
            return None
        return await self.keys.tenant_of(self.workflow_id.split("/", 1)[0])
