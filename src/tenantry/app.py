"""create_app(): middleware, error handlers and routers."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from tenantry import problem_docs
from tenantry.config.admin_api import router as tiers_router
from tenantry.config.api import router as config_router
from tenantry.config.cache import PrefixCache
from tenantry.config.listener import ConfigListener, other_cells_of
from tenantry.console.install import install as install_console
from tenantry.db.cells import cells_of
from tenantry.db.session import Database, create_app_engine
from tenantry.db.urls import app_url, libpq_dsn, replica_app_url, sqlalchemy_url
from tenantry.egress.gate import EgressGate
from tenantry.egress.policy import EgressPolicy
from tenantry.errors import (
    AppError,
    Conflict,
    MalformedRequest,
    ValidationFailed,
)
from tenantry.events.api import router as webhooks_router
from tenantry.idempotency import openapi as idempotency_openapi
from tenantry.idempotency.middleware import IdempotencyMiddleware
from tenantry.identity.access_tokens import signing_key
from tenantry.identity.admin_api import router as identity_admin_router
from tenantry.identity.api import router as identity_router
from tenantry.identity.api_keys_api import router as api_keys_router
from tenantry.identity.authn import Authenticator
from tenantry.identity.identities_api import router as identities_router
from tenantry.identity.oidc_api import router as oidc_router
from tenantry.identity.oidc_provider import OidcProviders
from tenantry.identity.oidc_secrets import secrets_key
from tenantry.identity.sso_api import router as sso_router
from tenantry.identity.throttle import LoginThrottle
from tenantry.identity.users_api import router as users_router
from tenantry.incidents.api import router as incidents_router
from tenantry.incidents.external_api import router as external_router
from tenantry.keys.service import TenantKeys, platform_key
from tenantry.knowledge.api import UPLOAD_PATH
from tenantry.knowledge.api import router as knowledge_router
from tenantry.knowledge.embeddings import checked_embedder
from tenantry.limits.api import router as limits_router
from tenantry.limits.backends import RedisHealth, concurrency_backend, rate_storage
from tenantry.limits.connections import ConnectionShares
from tenantry.limits.early import EarlyRefusal
from tenantry.limits.metering import UsageMeter
from tenantry.limits.middleware import LimitsMiddleware
from tenantry.limits.policy import PolicyStore
from tenantry.limits.rates import RateLimits
from tenantry.limits.shedding import LoadMonitor
from tenantry.observability.exposition import metrics
from tenantry.observability.health import check_database, check_temporal, check_workers
from tenantry.observability.health import router as health_router
from tenantry.observability.metrics import DB_POOL_SIZE
from tenantry.observability.pool import watch_pool
from tenantry.observability.readiness import WorkerReadiness
from tenantry.observability.slo import SLO_METER
from tenantry.observability.slo_api import router as slo_router
from tenantry.observability.state import StateCollector
from tenantry.observability.tenant_labels import TENANTS
from tenantry.ops.api import restore_router
from tenantry.ops.api import router as backups_router
from tenantry.ops.moves_api import router as moves_router
from tenantry.problems import problem_response, unexpected_error
from tenantry.read_your_writes import ReadYourWrites, position_key
from tenantry.retry_middleware import RetryTransactions
from tenantry.runtime.stopping import cancel_within, finish_within
from tenantry.settings import Settings, get_settings
from tenantry.tenancy.client_address import TrustedProxies
from tenantry.tenancy.middleware import TenantContextMiddleware
from tenantry.tenants.api import router as tenants_router
from tenantry.tenants.cells_api import router as cells_router
from tenantry.worker.client import connect as connect_temporal
from tenantry.worker.namespaces import Namespaces

log = structlog.get_logger("tenantry.app")


def create_app(
    settings: Settings | None = None, *, database_url: URL | str | None = None
) -> FastAPI:
    settings = settings or get_settings()
    url = _application_url(settings, database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        engine = create_app_engine(
            url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
        )
        replica_url = replica_app_url(settings)
        replica = (
            create_app_engine(
                replica_url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
            )
            if replica_url is not None
            else None
        )
        shares = ConnectionShares(settings.db_pool_size + settings.db_max_overflow)
        app.state.db = db = Database(
            engine, tenant_slots=shares, replica=replica, cells=cells_of(engine, settings)
        )
        state = app.state
        watch_pool(engine, "api")
        DB_POOL_SIZE.labels("api").set(settings.db_pool_size + settings.db_max_overflow)
        TENANTS.configure(top=settings.metrics_top_tenants, cap=settings.metrics_max_tenant_labels)
        state.metrics_state = StateCollector(state, ttl=settings.metrics_state_seconds)
        state.config_cache = PrefixCache(settings.config_cache_seconds)
        state.policies = PolicyStore(db, state.config_cache)
        redis_health = RedisHealth()
        state.rates = RateLimits(rate_storage(settings, redis_health))
        state.concurrency = concurrency_backend(settings, redis_health)
        state.login_throttle = LoginThrottle(
            settings.login_attempts_per_minute,
            state.concurrency,
            per_address=settings.login_address_failures_per_minute,
            max_lockout_seconds=settings.login_lockout_max_seconds,
        )
        state.egress_gate = EgressGate(state.concurrency, per_tenant=settings.egress_per_tenant)
        state.oidc_providers = OidcProviders(
            state.egress_policy, timeout=settings.sso_timeout_seconds
        )
        state.meter = UsageMeter(spill_dir=settings.home / "usage-spill")
        state.load = LoadMonitor(
            capacity=settings.max_in_flight,
            lag_threshold_seconds=settings.loop_lag_threshold_ms / 1000,
        )
        state.config_listener = ConfigListener(
            libpq_dsn(url), state.config_cache, cells=other_cells_of(db)
        )
        state.embedder = await checked_embedder(settings)
        state.kek = platform_key(settings)
        # Only to ask workflows their state: starts and signals go through the outbox, so the
        # API starts (lazily connected) and takes work while Temporal is away.
        state.temporal = (
            await connect_temporal(
                settings.temporal_address,
                settings.temporal_namespace,
                keys=TenantKeys(db, state.kek),
                lazy=True,
            )
            if settings.temporal_address
            else None
        )
        state.namespaces = Namespaces(state.temporal) if state.temporal is not None else None
        tasks = [
            asyncio.create_task(state.config_listener.run(), name="config-listener"),
            asyncio.create_task(state.load.watch_loop_lag(), name="loop-lag"),
            asyncio.create_task(state.meter.run(db, settings.usage_flush_seconds), name="usage"),
            asyncio.create_task(SLO_METER.run(db, settings.usage_flush_seconds), name="slo"),
        ]
        try:
            yield
        finally:
            # Each step bounded: a database or Redis that stopped answering must not hold the
            # process past its grace (the usage meter spills what it could not write).
            await cancel_within(tasks)
            await state.meter.close(db)
            await finish_within(SLO_METER.flush(db), "slo flush")
            if hasattr(state.concurrency, "close"):
                await finish_within(state.concurrency.close(), "redis close")
            await finish_within(db.dispose(), "database pool")
            if replica is not None:
                await finish_within(replica.dispose(), "replica pool")

    app = FastAPI(
        title="Tenantry",
        version="0.1.0",
        summary="One platform, many isolated tenants.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.signing_key = signing_key(settings)
    app.state.trusted_proxies = TrustedProxies(settings.trusted_proxies)
    app.state.egress_policy = EgressPolicy(settings.egress_allowlist)
    # OIDC client secrets at rest: under the platform key, which never reaches the database.
    app.state.oidc_secrets_key = secrets_key(platform_key(settings))
    app.state.health_checks = [check_database, check_temporal]
    if settings.ready_worker_stale_seconds and settings.temporal_address:
        app.state.worker_readiness = WorkerReadiness(
            stale_seconds=settings.ready_worker_stale_seconds
        )
        app.state.health_checks.append(check_workers)
    # Innermost: a request whose transaction hit a deadlock or serialisation failure runs again.
    app.add_middleware(RetryTransactions, state=app.state, replay_limit=settings.max_body_bytes)
    # Outside the retries: Idempotency-Key runs once the caller is known and within its limits,
    # and keeps the answer the retried request finally gave.
    app.add_middleware(IdempotencyMiddleware, state=app.state)
    app.add_middleware(LimitsMiddleware, state=app.state)
    app.add_middleware(
        TenantContextMiddleware,
        authenticate=Authenticator(app.state),
        max_body_bytes=settings.max_body_bytes,
        # An upload carries the document and a few form fields, bounded like any JSON body.
        body_limits={UPLOAD_PATH: settings.max_document_bytes + settings.max_body_bytes},
        precheck=EarlyRefusal(app.state),
    )
    if settings.replica_database_url:
        # Outermost: the session's last write position, for reads routed to the replica.
        app.add_middleware(ReadYourWrites, key=position_key(app.state.signing_key))
    _install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(identity_router)
    app.include_router(users_router)
    app.include_router(api_keys_router)
    app.include_router(sso_router)
    app.include_router(oidc_router)
    app.include_router(identities_router)
    app.include_router(tenants_router)
    app.include_router(backups_router)
    app.include_router(restore_router)
    app.include_router(moves_router)
    app.include_router(cells_router)
    app.include_router(identity_admin_router)
    app.include_router(config_router)
    app.include_router(tiers_router)
    app.include_router(limits_router)
    app.include_router(knowledge_router)
    app.include_router(incidents_router)
    app.include_router(webhooks_router)
    app.include_router(external_router)
    app.include_router(slo_router)
    app.add_api_route("/metrics", metrics, include_in_schema=False)
    # The Idempotency-Key header first, so the problem answers count it among the parameters.
    idempotency_openapi.install(app)
    problem_docs.install(app)
    # Last: its gateway must be the outermost middleware (it turns the session into a bearer).
    install_console(app)
    return app


def _application_url(settings: Settings, given: URL | str | None) -> URL:
    if given is not None:
        return sqlalchemy_url(given)
    if settings.app_database_url or settings.database_url:
        return app_url(settings, settings.app_database_url or settings.database_url)
    raise RuntimeError(
        "No database: set TENANTRY_DATABASE_URL, or start the embedded stack with `tenantry run`."
    )


def _field_of(error: dict) -> str:
    """`body.title`, `query.cursor`, …; inside a JSON document, down to the bad value's path."""
    inner = getattr(error.get("ctx", {}).get("error"), "path", ())
    return ".".join(str(p) for p in (*error.get("loc", ()), *inner))


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def app_error(request: Request, exc: AppError):
        return problem_response(exc, instance=request.url.path)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            error: AppError = MalformedRequest("The request body is not valid JSON.")
        else:
            fields = [{"field": _field_of(e), "message": e.get("msg", "")} for e in errors]
            named = ", ".join(f["field"] for f in fields)
            error = ValidationFailed(f"Invalid value for {named}.", errors=fields)
        return problem_response(error, instance=request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        codes = {404: "not-found", 405: "method-not-allowed"}
        error = AppError(
            str(exc.detail),
            status=exc.status_code,
            code=codes.get(exc.status_code, f"http-{exc.status_code}"),
            title=str(exc.detail),
            headers=dict(exc.headers or {}),
        )
        return problem_response(error, instance=request.url.path)

    @app.exception_handler(IntegrityError)
    async def integrity_error(request: Request, exc: IntegrityError):
        # Races past a service's own checks land here; never a 500 for an expected conflict.
        constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None)
        detail = f"The change conflicts with existing data ({constraint or 'constraint'})."
        return problem_response(Conflict(detail), instance=request.url.path)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        # Requests are answered by the tenant middleware; this is for anything outside it.
        log.exception("unhandled error", error=type(exc).__name__)
        return problem_response(unexpected_error(exc), instance=request.url.path)
