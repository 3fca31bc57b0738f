"""Inputs of the webhook delivery workflow: plain data, safe in the workflow sandbox."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeliveryInput:
    tenant_id: str
    delivery_id: str
    max_attempts: int
    first_retry_seconds: float = 1.0


@dataclass(frozen=True)
class GiveUpInput:
    tenant_id: str
    delivery_id: str
    reason: str
