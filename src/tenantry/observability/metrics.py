"""Every Prometheus metric of the platform, declared once. Labels are bounded: route templates and
tiers, never raw paths, tenant slugs or secrets."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

HTTP_REQUESTS = Counter(
    "tenantry_http_requests",
    "HTTP requests answered.",
    ["route", "method", "status", "tier"],
    registry=REGISTRY,
)
HTTP_LATENCY = Histogram(
    "tenantry_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["route", "method", "status", "tier"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
TENANT_LIFECYCLE = Counter(
    "tenantry_tenant_lifecycle_events",
    "Tenant lifecycle changes.",
    ["action"],
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "tenantry_rate_limited",
    "Requests refused by a tenant's rate or concurrency limit.",
    ["tier", "policy"],
    registry=REGISTRY,
)
SHED = Counter(
    "tenantry_shed",
    "Requests refused because the process was saturated.",
    ["tier"],
    registry=REGISTRY,
)
IN_FLIGHT = Gauge("tenantry_in_flight_requests", "Requests being served.", registry=REGISTRY)
EVENT_LOOP_LAG = Gauge(
    "tenantry_event_loop_lag_seconds", "How late the event loop runs a timer.", registry=REGISTRY
)
LIMITS_DEGRADED = Counter(
    "tenantry_limits_degraded",
    "Limit decisions taken without Redis: `rate` failed open, `concurrency` and `memory` "
    "(login throttling) counted in this process's memory.",
    ["limit"],
    registry=REGISTRY,
)
OUTBOX_DELIVERED = Counter(
    "tenantry_outbox_delivered",
    "Outbox messages Temporal took, by kind and outcome.",
    ["kind", "outcome"],
    registry=REGISTRY,
)
OUTBOX_RETRIES = Counter(
    "tenantry_outbox_retries",
    "Outbox deliveries that failed and will be tried again, by kind.",
    ["kind"],
    registry=REGISTRY,
)
OUTBOX_DELAY = Histogram(
    "tenantry_outbox_delay_seconds",
    "From an outbox message's commit to Temporal taking it.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
OUTBOX_WAITING = Counter(
    "tenantry_outbox_held",
    "Workflow starts held back because the tenant's workflows_in_flight were all taken.",
    ["tier"],
    registry=REGISTRY,
)
