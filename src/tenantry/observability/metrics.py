"""Every Prometheus metric of the platform, declared once.

Labels are bounded: route templates, tiers, outcomes from short fixed lists, and `tenant` only on
counters and gauges, through `tenant_labels` (the top tenants by traffic and every enterprise
tenant by slug, the rest as `__other__`). Histograms never carry a tenant. No raw path, id or
secret is ever a label value.

Two kinds of metric live here: those the code counts as things happen (`Counter`, `Gauge`,
`Histogram`, which under several processes go through prometheus_client's multiprocess files),
and `STATE`, the families read at scrape time from PostgreSQL, Temporal and the health checks
(see `observability.state`), which only the process answering the scrape computes.
"""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from tenantry.tenants.tiers import TIERS

REGISTRY = CollectorRegistry(auto_describe=True)
TIER_NAMES = tuple(TIERS)
OTHER = "__other__"
# Seconds: fine below a second, where the tiers' objectives lie (0.2, 0.5, 1), and the seeds'
# alert thresholds (2 s, 5 s) are bucket bounds, so the rules read them exactly.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10)
SLOW_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


def _counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
    return Counter(name, doc, labels, registry=REGISTRY)


def _gauge(name: str, doc: str, labels: tuple[str, ...] = (), *, mode: str = "livesum") -> Gauge:
    # `mode`: how the values of several processes combine under multiprocess mode.
    return Gauge(name, doc, labels, registry=REGISTRY, multiprocess_mode=mode)


def _histogram(name: str, doc: str, labels: tuple[str, ...], buckets=LATENCY_BUCKETS) -> Histogram:
    assert "tenant" not in labels, "histograms keep tier, never tenant"
    return Histogram(name, doc, labels, buckets=buckets, registry=REGISTRY)


# HTTP -------------------------------------------------------------------------------------------
HTTP_REQUESTS = _counter(
    "tenantry_http_requests",
    "HTTP requests answered, by route template, method, status and the caller's tier.",
    ("route", "method", "status", "tier"),
)
HTTP_LATENCY = _histogram(
    "tenantry_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ("route", "method", "status", "tier"),
)
TENANT_REQUESTS = _counter(
    "tenantry_tenant_requests",
    "Requests of a tenant's callers, by status class (2xx, 3xx, 4xx, 429, 5xx).",
    ("tenant", "tier", "code"),
)
TENANT_SLOW_REQUESTS = _counter(
    "tenantry_tenant_requests_slow",
    "Requests of a tenant's callers answered (without a 5xx) slower than the tier's latency "
    "objective.",
    ("tenant", "tier"),
)
IN_FLIGHT = _gauge("tenantry_in_flight_requests", "Requests being served.")
EVENT_LOOP_LAG = _gauge(
    "tenantry_event_loop_lag_seconds", "How late the event loop runs a timer.", mode="livemax"
)

# Limits -----------------------------------------------------------------------------------------
RATE_LIMITED = _counter(
    "tenantry_rate_limited",
    "Requests refused by a tenant's limit, named as in its limits (requests_per_minute, "
    "concurrent_requests, searches_per_minute).",
    ("tenant", "tier", "limit"),
)
QUOTA_REFUSED = _counter(
    "tenantry_quota_refusals",
    "Writes refused because a tenant's quota (documents, users, api_keys, "
    "ingestion_bytes_per_day) was used up.",
    ("tenant", "limit"),
)
SHED = _counter(
    "tenantry_shed",
    "Requests refused because the process was saturated (lowest tiers first).",
    ("tier",),
)
LIMITS_DEGRADED = _counter(
    "tenantry_limits_degraded",
    "Limit decisions taken without Redis: `rate` failed open, `concurrency` and `memory` "
    "(login throttling) counted in this process's memory.",
    ("limit",),
)
CONFIG_CACHE = _counter(
    "tenantry_config_cache_lookups",
    "Lookups of tenant policies in the process's cache, by result (hit, miss).",
    ("result",),
)

# Database ---------------------------------------------------------------------------------------
DB_POOL_IN_USE = _gauge(
    "tenantry_db_pool_connections_in_use",
    "Database connections checked out of the pool, by process kind (api, worker).",
    ("pool",),
)
DB_POOL_SIZE = _gauge(
    "tenantry_db_pool_connections_max",
    "Most connections the pool may open (size plus overflow), by process kind.",
    ("pool",),
)

# Knowledge --------------------------------------------------------------------------------------
DOCUMENTS_INGESTED = _counter(
    "tenantry_documents_ingested",
    "Documents whose ingestion ended, by outcome (ready, failed).",
    ("tenant", "outcome"),
)
CHUNKS_INGESTED = _counter("tenantry_chunks_ingested", "Chunks embedded and stored.", ("tenant",))
INGESTION_DURATION = _histogram(
    "tenantry_ingestion_duration_seconds",
    "From a document's upload to its ingestion's end (queueing included).",
    ("tier", "outcome"),
    buckets=SLOW_BUCKETS,
)
SEARCHES = _counter(
    "tenantry_searches",
    "Knowledge searches, by source (api, external, triage) and result (hits, empty).",
    ("tenant", "source", "result"),
)
SEARCH_LATENCY = _histogram(
    "tenantry_search_duration_seconds",
    "Hybrid retrieval in PostgreSQL (the query's embedding not included).",
    ("tier", "source"),
)

# Incidents and webhooks -------------------------------------------------------------------------
INCIDENTS_REPORTED = _counter("tenantry_incidents_reported", "Incidents reported.", ("tenant",))
TRIAGE_LATENCY = _histogram(
    "tenantry_incident_triage_seconds",
    "From an incident's report to its proposed resolution.",
    ("tier",),
    buckets=SLOW_BUCKETS,
)
ESCALATIONS = _counter(
    "tenantry_incident_escalations", "Incidents escalated by their timer.", ("tenant",)
)
RESOLUTIONS = _counter(
    "tenantry_incidents_resolved",
    "Incidents resolved, by how (auto, approved, resolved: by a person's own text).",
    ("tenant", "how"),
)
WEBHOOK_DELIVERIES = _counter(
    "tenantry_webhook_deliveries",
    "Webhook delivery attempts, by outcome (delivered, http_error, unreachable, forbidden, "
    "gave_up).",
    ("tenant", "outcome"),
)

# Outbox -----------------------------------------------------------------------------------------
OUTBOX_DELIVERED = _counter(
    "tenantry_outbox_delivered",
    "Outbox messages Temporal took, by kind and outcome.",
    ("kind", "outcome"),
)
OUTBOX_RETRIES = _counter(
    "tenantry_outbox_retries",
    "Outbox deliveries that failed and will be tried again, by kind.",
    ("kind",),
)
OUTBOX_DELAY = _histogram(
    "tenantry_outbox_delay_seconds",
    "From an outbox message's commit to Temporal taking it.",
    ("kind",),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
OUTBOX_WAITING = _counter(
    "tenantry_outbox_held",
    "Workflow starts held back because the tenant's workflows_in_flight were all taken.",
    ("tenant", "tier"),
)


# Temporal's SDK, drained from the worker's runtime (observability.temporal_sdk) ------------------
# Temporal's own names, so its documentation and dashboards apply; labels: namespace, task queue
# and the worker's or poller's type, never a workflow's type or id.
SDK_QUEUE = ("namespace", "task_queue")
SDK_WORKFLOW_SCHEDULE_TO_START = Histogram(
    "temporal_workflow_task_schedule_to_start_latency_seconds",
    "Temporal SDK: from a workflow task's scheduling to a worker starting it.",
    SDK_QUEUE,
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
SDK_ACTIVITY_SCHEDULE_TO_START = Histogram(
    "temporal_activity_schedule_to_start_latency_seconds",
    "Temporal SDK: from an activity task's scheduling to a worker starting it.",
    SDK_QUEUE,
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
# Each worker process reports its own slots and polls; several processes add up.
SDK_SLOTS_AVAILABLE = _gauge(
    "temporal_worker_task_slots_available",
    "Temporal SDK: task slots free, by worker type (WorkflowWorker, ActivityWorker, "
    "LocalActivityWorker).",
    (*SDK_QUEUE, "worker_type"),
)
SDK_SLOTS_USED = _gauge(
    "temporal_worker_task_slots_used",
    "Temporal SDK: task slots in use, by worker type.",
    (*SDK_QUEUE, "worker_type"),
)
SDK_POLLERS = _gauge(
    "temporal_num_pollers",
    "Temporal SDK: polls the worker has open, by poller type.",
    (*SDK_QUEUE, "poller_type"),
)
SDK_WORKFLOW_POLLS_SUCCEEDED = _counter(
    "temporal_workflow_task_queue_poll_succeed",
    "Temporal SDK: workflow task polls that returned a task.",
    SDK_QUEUE,
)
SDK_WORKFLOW_POLLS_EMPTY = _counter(
    "temporal_workflow_task_queue_poll_empty",
    "Temporal SDK: workflow task polls that timed out empty.",
    SDK_QUEUE,
)
SDK_ACTIVITY_POLLS_EMPTY = _counter(
    "temporal_activity_poll_no_task",
    "Temporal SDK: activity task polls that timed out empty.",
    SDK_QUEUE,
)
SDK_WORKFLOW_TASKS_FAILED = _counter(
    "temporal_workflow_task_execution_failed",
    "Temporal SDK: workflow tasks that failed (the workflow code raised, or did not replay).",
    SDK_QUEUE,
)
SDK_ACTIVITIES_FAILED = _counter(
    "temporal_activity_execution_failed",
    "Temporal SDK: activity attempts that failed.",
    SDK_QUEUE,
)


# State read at scrape time ----------------------------------------------------------------------
@dataclass(frozen=True)
class Family:
    name: str
    doc: str
    labels: tuple[str, ...]
    kind: str = "gauge"  # or "counter": a total kept in PostgreSQL, exported with `_total`


STATE = (
    Family(
        "tenantry_tenants", "Tenants by tier and status (the control plane).", ("tier", "status")
    ),
    Family("tenantry_incidents", "Incidents by state.", ("tenant", "state")),
    Family(
        "tenantry_incident_approvals_waiting",
        "Incidents whose proposal waits for a person's approval.",
        ("tenant",),
    ),
    Family(
        "tenantry_documents", "Documents in the knowledge base, by status.", ("tenant", "status")
    ),
    Family(
        "tenantry_active_sessions",
        "Login sessions (refresh-token families) alive: not revoked, not expired.",
        ("tenant",),
    ),
    Family(
        "tenantry_workflows_in_flight",
        "Workflows holding one of their tenant's workflows_in_flight slots.",
        ("tenant",),
    ),
    Family(
        "tenantry_workflows_queued",
        "Workflow starts waiting in the outbox for a workflows_in_flight slot.",
        ("tenant",),
    ),
    Family("tenantry_outbox_pending", "Outbox messages not yet delivered.", ()),
    Family(
        "tenantry_outbox_oldest_pending_seconds",
        "Age of the oldest outbox message not yet delivered (0 when none).",
        (),
    ),
    Family(
        "tenantry_tenant_limit",
        "A named tenant's limits (its tier's, with operator overrides), as Grafana Mimir "
        "publishes its tenants' limits.",
        ("tenant", "limit"),
    ),
    Family("tenantry_tier_limit", "Each tier's default limits.", ("tier", "limit")),
    Family(
        "tenantry_slo_objective",
        "Each tier's objectives: availability (ratio of non-5xx) and latency (ratio of requests "
        "within latency_seconds).",
        ("tier", "sli"),
    ),
    Family(
        "tenantry_slo_latency_threshold_seconds",
        "Each tier's latency objective: requests slower than this count against it.",
        ("tier",),
    ),
    Family(
        "tenantry_dependency_up",
        "Whether a component answers its health check (database, temporal, workers, embedder, "
        "redis, llm): 1 ok, 0.5 degraded, 0 down.",
        ("dependency",),
    ),
    Family(
        "tenantry_dependency_check_seconds",
        "How long the component's last health check took.",
        ("dependency",),
    ),
    Family(
        "tenantry_temporal_task_queue_pollers",
        "Workers that polled each Temporal task queue the platform serves, the shared one and "
        "every dedicated one (Temporal's DescribeTaskQueue).",
        ("task_queue", "type"),
    ),
    Family(
        "tenantry_temporal_task_queue_backlog",
        "Tasks waiting in each Temporal task queue the platform serves (Temporal's approximate "
        "count; per tenant, see tenantry_workflows_queued).",
        ("task_queue", "type"),
    ),
    Family("tenantry_build_info", "The running version.", ("version",)),
    Family(
        "tenantry_tenant_lifecycle_events",
        "Tenant lifecycle changes (created, updated, suspended, resumed, deleted, purged), "
        "counted in PostgreSQL in the transaction that makes them, so the API, the CLI and "
        "workflows alike.",
        ("action",),
        kind="counter",
    ),
)


def _initialise() -> None:
    """Series whose label values are known up front exist from the start, at 0, so that a rate
    over them is right from the first scrape and dashboards show 0, not "no data"."""
    for tier in TIER_NAMES:
        SHED.labels(tier)
        for limit in ("requests_per_minute", "concurrent_requests", "searches_per_minute"):
            RATE_LIMITED.labels(OTHER, tier, limit)
        OUTBOX_WAITING.labels(OTHER, tier)
        for code in ("2xx", "4xx", "429", "5xx"):
            TENANT_REQUESTS.labels(OTHER, tier, code)
        TENANT_SLOW_REQUESTS.labels(OTHER, tier)
    for result in ("hit", "miss"):
        CONFIG_CACHE.labels(result)
    for outcome in ("ready", "failed"):
        DOCUMENTS_INGESTED.labels(OTHER, outcome)
    CHUNKS_INGESTED.labels(OTHER)
    for result in ("hits", "empty"):
        SEARCHES.labels(OTHER, "api", result)
    INCIDENTS_REPORTED.labels(OTHER)
    ESCALATIONS.labels(OTHER)
    for outcome in ("delivered", "http_error", "unreachable", "forbidden", "gave_up"):
        WEBHOOK_DELIVERIES.labels(OTHER, outcome)
    for limit in ("documents", "users", "api_keys", "ingestion_bytes_per_day"):
        QUOTA_REFUSED.labels(OTHER, limit)
    for pool in ("api", "worker"):
        DB_POOL_IN_USE.labels(pool)
    for how in ("auto", "approved", "resolved"):
        RESOLUTIONS.labels(OTHER, how)
    for limit in ("rate", "concurrency", "memory"):
        LIMITS_DEGRADED.labels(limit)
    for kind in ("start", "signal", "cancel"):
        OUTBOX_RETRIES.labels(kind)


_initialise()
