"""The platform's own settings, read once from TENANTRY_* variables or a TOML file.

Per-tenant configuration lives in `tenantry.config`; this class is only what an operator of the
deployment sets.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

APP_ROLE = "tenantry_app"
OWNER_ROLE = "tenantry_owner"
PLACEHOLDER_SECRETS = frozenset({"changeme", "secret", "change-me", "changethis"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TENANTRY_", extra="ignore", frozen=True, populate_by_name=True
    )

    environment: Literal["development", "test", "production"] = "development"
    home: Path = Field(default=Path(".tenantry"), description="Data folder of the embedded stack.")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL >= 15 with pgvector. Unset: the embedded PostgreSQL under `home`.",
    )
    database_name: str = "tenantry"
    app_database_url: str | None = Field(
        default=None,
        description=f"How the application connects; default: `{APP_ROLE}` on the same server.",
    )
    app_db_password: SecretStr | None = None
    replica_database_url: str | None = Field(
        default=None,
        description="A streaming standby of the primary that read-only routes may read from, "
        f"connected to as `{APP_ROLE}` (so under the same RLS); a caller's reads stay on the "
        "primary until the standby has replayed its writes. Unset: every read on the primary.",
    )
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=5, ge=0)

    bootstrap_token: SecretStr | None = Field(
        default=None, description="Operator bootstrap token; generated on first start when unset."
    )
    jwt_secret: SecretStr | None = Field(
        default=None,
        description="HS256 key for access tokens. Required in production; elsewhere one is "
        "generated once and kept in `home`.",
    )
    platform_key: SecretStr | None = Field(
        default=None,
        description="Wraps every tenant's data key (crypto-shredding). Required in production; "
        "elsewhere one is generated once and kept in `home`.",
    )
    access_token_minutes: int = Field(default=60, ge=1)
    refresh_token_days: int = Field(default=7, ge=1)
    refresh_grace_seconds: float = Field(
        default=10,
        ge=0,
        description="A spent refresh token presented again this soon (a retry, a second tab) "
        "gets a working pair in the same session instead of revoking it.",
    )
    login_attempts_per_minute: int = Field(
        default=5, ge=1, description="Failed logins per account before it is locked out."
    )
    login_address_failures_per_minute: int = Field(
        default=50,
        ge=1,
        description="Failed logins from one client address in a minute before it is refused "
        "(higher than per account: a NAT or an office shares one address).",
    )
    login_lockout_max_seconds: int = Field(
        default=900,
        ge=60,
        description="An account's lockout doubles with each failure past the limit, up to this.",
    )
    trusted_proxies: tuple[str, ...] = Field(
        default=(),
        description="Addresses or networks of the proxies whose X-Forwarded-For is believed "
        "('*': every peer, only where the network lets nothing else reach the API).",
    )
    public_url: str | None = Field(
        default=None,
        description="How browsers reach the API (OIDC redirect URIs); unset: from the request.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis for limits shared by many API processes; unset: in process memory.",
    )
    max_in_flight: int = Field(
        default=256, ge=1, description="Requests one API process serves at once before shedding."
    )
    loop_lag_threshold_ms: float = Field(default=250, gt=0)
    usage_flush_seconds: float = Field(default=5, gt=0)
    config_cache_seconds: float = Field(
        default=300, gt=0, description="Safety net; changes are pushed at once."
    )
    embedding_providers: tuple[str, ...] = ("local",)
    llm_providers: tuple[str, ...] = ("none",)
    temporal_address: str | None = Field(
        default=None, description="An external Temporal; unset: the dev server under `home`."
    )
    temporal_namespace: str = "default"
    temporal_port: int = Field(default=7233, ge=1, le=65535)
    temporal_ui: bool = Field(
        default=True, description="Serve the local Temporal's web UI, on loopback (`tenantry run`)."
    )
    temporal_ui_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of that UI; unset: `temporal_port` + 1000, as Temporal's CLI does.",
    )
    temporal_ui_url: str | None = Field(
        default=None,
        max_length=2000,
        pattern=r"^https?://",
        description="The Temporal UI operators open (the console links a tenant's workflows "
        "there); `tenantry run` sets it to the UI it starts. Unset: no link.",
    )
    run_worker: bool = Field(default=True, description="`tenantry run` also runs a worker.")
    api_processes: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="API processes `tenantry run` serves from; more than one needs Redis.",
    )
    drain_seconds: float = Field(
        default=5,
        ge=0,
        description="After SIGTERM: readiness answers 503 this long while requests are still served.",
    )
    shutdown_grace_seconds: float = Field(
        default=20, gt=0, description="Then: how long in-flight requests get to finish."
    )
    outbox_sweep_seconds: float = Field(
        default=30, gt=0, description="Safety-net sweep of the outbox; NOTIFY wakes it at once."
    )
    outbox_max_backoff_seconds: float = Field(
        default=30, gt=0, description="Longest wait between two tries of one outbox message."
    )
    embedding_provider: Literal["local", "ollama", "openai"] = "local"
    embedding_url: str | None = None
    embedding_model: str = "multilingual-e5-small"
    embedding_api_key: SecretStr | None = None
    embedding_query_prefix: str = Field(default="query: ", description="e5 models want these.")
    embedding_passage_prefix: str = "passage: "
    chunk_size: int = Field(default=800, ge=100)
    chunk_overlap: int = Field(default=100, ge=0)
    hnsw_threshold: int = Field(
        default=20_000, ge=1, description="Chunks past which a tenant gets its own HNSW index."
    )
    max_document_bytes: int = Field(default=20_000_000, ge=1)
    extract_timeout_seconds: float = Field(
        default=60, gt=0, description="Wall-clock limit for extracting and chunking one document."
    )
    extract_memory_mb: int = Field(
        default=1024, ge=128, description="Address-space limit of the extraction process."
    )
    extract_max_pages: int = Field(default=1000, ge=1)
    extract_max_inflation: float = Field(
        default=100,
        ge=1,
        description="PDF content may inflate to this many times the upload (at least 1 MB).",
    )
    max_chunks_per_document: int = Field(default=2000, ge=1)
    egress_allowlist: tuple[str, ...] = Field(
        default=(),
        validation_alias=AliasChoices(
            "egress_allowlist",
            "TENANTRY_EGRESS_ALLOWLIST",
            "webhook_allowlist",
            "TENANTRY_WEBHOOK_ALLOWLIST",  # its name before it covered LDAP and OIDC too
        ),
        description="Hosts or networks (CIDR) that outbound calls (webhooks, directories, "
        "identity providers) may reach although not globally routable.",
    )
    egress_per_tenant: int = Field(
        default=4, ge=1, description="Outbound calls one tenant may have in flight at once."
    )
    sso_timeout_seconds: float = Field(
        default=5, gt=0, description="Each call to a tenant's directory or identity provider."
    )
    webhook_timeout_seconds: float = Field(default=10, gt=0)
    llm_provider: Literal["none", "ollama", "openai"] = "none"
    llm_url: str | None = None
    llm_model: str = "llama3.2"
    llm_api_key: SecretStr | None = None
    llm_timeout_seconds: float = Field(default=30, gt=0)
    demo_tenants: bool = True
    cell: str = "main"
    cache_prefix: str = "tenantry"
    pool_task_queue: str = "tenantry-pool"
    dedicated_workers: Literal["embedded", "external"] = Field(
        default="embedded",
        description="Who serves the task queue of a tenant given dedicated workers (a silo "
        "placement): `embedded`, the pool worker process, one Temporal worker per such queue; "
        "`external`, processes of their own (`tenantry worker --tenant SLUG`, the Kubernetes "
        "deployment of deploy/tools/dedicated_worker.py).",
    )
    dedicated_sweep_seconds: float = Field(
        default=5,
        gt=0,
        description="How often an embedding worker process reads which tenants have dedicated "
        "workers (a configuration change reaches it within this).",
    )
    backup_url: str | None = Field(
        default=None,
        description="Where tenant backups go: `s3://bucket/prefix` (any S3-compatible store) or "
        "`file:///folder`; unset: `home/backups`.",
    )
    backup_store_options: dict[str, str] = Field(
        default_factory=dict,
        description="The object store's options (obstore's S3 config: endpoint, region, "
        "access_key_id, secret_access_key, allow_http).",
    )

    wal_archive: Path | None = Field(
        default=None,
        description="Archive the embedded PostgreSQL's WAL into this folder (point-in-time "
        "recovery: see docs/operations.md); unset: no archiving. Costs the disk of every WAL "
        "segment written, 16 MiB each, and a restart of the server when turned on or off.",
    )
    wal_archive_timeout_seconds: int = Field(
        default=300,
        ge=0,
        description="With `wal_archive`: switch to a new WAL segment at least this often when "
        "anything was written, so at most this much committed work is only on the live server "
        "(0: only when a segment fills). Each switch archives a whole 16 MiB segment.",
    )

    metrics_top_tenants: int = Field(
        default=20, ge=0, description="Tenants named in per-tenant metrics by traffic (top K)."
    )
    metrics_max_tenant_labels: int = Field(
        default=100,
        ge=0,
        description="Hard cap on tenants named in metrics, enterprise ones included; past it, "
        "new tenants count under `__other__` until the process restarts.",
    )
    worker_metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port of a lone worker's /metrics (`tenantry worker`); unset: `port`.",
    )
    ready_worker_stale_seconds: float = Field(
        default=300,
        ge=0,
        description="/health/ready answers 503 when no worker has polled the shared task queue "
        "for this long (Temporal's own poller freshness, matching.PollerHistoryTTL: 5 minutes); "
        "a replica that just started waits as long before refusing; 0: readiness ignores the "
        "workers.",
    )
    metrics_state_seconds: float = Field(
        default=10, ge=0, description="How long a scrape reuses the counts read from PostgreSQL."
    )

    log_level: str = "INFO"
    log_json: bool = True
    max_body_bytes: int = Field(default=1_048_576, ge=1024)

    @field_validator("home", "wal_archive")
    @classmethod
    def _absolute_home(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value is not None else None

    @model_validator(mode="after")
    def _production_needs_real_secrets(self) -> Settings:
        if self.environment == "production":
            secret = self.jwt_secret.get_secret_value() if self.jwt_secret else ""
            if len(secret) < 32 or secret.lower() in PLACEHOLDER_SECRETS:
                raise ValueError(
                    "TENANTRY_JWT_SECRET must be set to 32+ random characters in production"
                )
            key = self.platform_key.get_secret_value() if self.platform_key else ""
            if len(key) < 32 or key.lower() in PLACEHOLDER_SECRETS:
                raise ValueError(
                    "TENANTRY_PLATFORM_KEY must be set to 32+ random characters in production"
                )
        return self

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = os.environ.get("TENANTRY_CONFIG_FILE", "tenantry.toml")
        toml = TomlConfigSettingsSource(settings_cls, toml_file=toml_file)
        return (init_settings, env_settings, toml, file_secret_settings)


@lru_cache
def get_settings() -> Settings:
    return Settings()
