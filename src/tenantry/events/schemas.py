"""Webhook payloads."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tenantry.api_types import Flag, HttpUrlText, text

EVENT_TYPES = ("incident.created", "incident.escalated", "incident.resolved", "document.ready")
EventType = Literal[
    "*", "incident.created", "incident.escalated", "incident.resolved", "document.ready"
]
Url = HttpUrlText
Description = text(500)
Events = Annotated[list[EventType], Field(min_length=1, max_length=len(EVENT_TYPES) + 1)]


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url
    events: Events = ["*"]
    description: Description | None = None


class EndpointUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    events: Events | None = None
    description: Description | None = None
    active: Flag | None = None

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
