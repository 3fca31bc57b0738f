"""Webhook payloads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

EVENT_TYPES = ("incident.created", "incident.escalated", "incident.resolved", "document.ready")
EventType = Literal[
    "*", "incident.created", "incident.escalated", "incident.resolved", "document.ready"
]
Url = Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2000)]


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url
    events: Annotated[list[EventType], Field(min_length=1)] = ["*"]
    description: Annotated[str, StringConstraints(max_length=500)] | None = None


class EndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    events: Annotated[list[EventType], Field(min_length=1)] | None = None
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    active: bool | None = None

    @model_validator(mode="after")
    def _something(self) -> EndpointUpdate:
        if not self.model_fields_set:
            raise ValueError("nothing to change")
        return self


class EndpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    events: list[str]
    description: str | None
    active: bool
    created_at: datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(description="The signing secret (whsec_…), shown only in this response.")


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_id: str
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    total: int
    limit: int
    offset: int
