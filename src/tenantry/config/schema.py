"""What a tenant can configure: one validated document, with the platform's defaults."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, HttpUrl, StringConstraints, field_validator

Severity = Literal["low", "medium", "high", "critical"]
Color = Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$")]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IncidentSettings(Section):
    auto_resolve_max_severity: Severity = "low"
    auto_resolve_min_confidence: float = Field(default=0.85, ge=0, le=1)
    escalation_after_minutes: int = Field(default=240, ge=5, le=10_080)
    approval_reminder_minutes: int = Field(default=60, ge=5, le=10_080)


class WebhookDefaults(Section):
    max_attempts: int = Field(default=8, ge=1, le=20)
    timeout_seconds: float = Field(default=10, gt=0, le=60)


class EmbeddingSettings(Section):
    provider: Literal["local", "ollama", "openai"] = "local"


class LlmSettings(Section):
    provider: Literal["none", "ollama", "openai"] = "none"
    model: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    timeout_seconds: float = Field(default=30, gt=0, le=300)


class Branding(Section):
    display_name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    primary_color: Color = "#1f6feb"
    accent_color: Color = "#f78166"
    logo_url: HttpUrl | None = None

    @field_validator("logo_url")
    @classmethod
    def _https_only(cls, value: HttpUrl | None) -> HttpUrl | None:
        if value is not None and value.scheme != "https":
            raise ValueError("the logo must be served over https")
        return value


class Features(Section):
    dedicated_workers: bool = False
    own_namespace: bool = False  # a Temporal namespace of its own; needs dedicated_workers
    llm_triage: bool = False
    external_api: bool = True
    webhooks: bool = True


class SelfLimits(Section):
    """Limits a tenant may set for itself: only lower than what its tier and operator allow."""

    requests_per_minute: int | None = Field(default=None, ge=1)
    searches_per_minute: int | None = Field(default=None, ge=1)


class TenantConfig(Section):
    language: Literal["spanish", "english", "simple"] = "english"
    incidents: IncidentSettings = IncidentSettings()
    webhooks: WebhookDefaults = WebhookDefaults()
    embeddings: EmbeddingSettings = EmbeddingSettings()
    llm: LlmSettings = LlmSettings()
    branding: Branding = Branding()
    features: Features = Features()
    limits: SelfLimits = SelfLimits()


PLATFORM_DEFAULTS: dict = TenantConfig().model_dump(mode="json")
