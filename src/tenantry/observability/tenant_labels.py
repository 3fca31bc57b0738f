"""Which tenants get a `tenant` label of their own: bounded cardinality with true sums.

A counter or gauge labelled by tenant would make a series per tenant per label combination (at
1,000 tenants, thousands per metric). So only the tenants that matter are named: every enterprise
tenant, and the top K by traffic (`TENANTRY_METRICS_TOP_TENANTS`); every other tenant's counts go
to `tenant="__other__"`, so that a sum over `tenant` is still the platform's total.

Each process ranks what it sees itself (every counted event is traffic), re-ranking every
`RANK_EVERY` events; until K tenants are named, a tenant is named on first sight. A tenant once
named stays named until the process restarts: its counter series then only ever grows, and
`__other__` never gives counts back (moving a tenant's past counts out of `__other__` would make
that counter go down, which Prometheus reads as a reset). The named set has a hard cap
(`TENANTRY_METRICS_MAX_TENANT_LABELS`); past it, new tenants, enterprise ones included, fold into
`__other__`. Histograms never carry a tenant: they keep `tier`.
"""

from __future__ import annotations

import heapq
import threading
from collections import Counter

OTHER = "__other__"
ENTERPRISE = "enterprise"
RANK_EVERY = 500


class TenantLabels:
    def __init__(self, *, top: int = 20, cap: int = 100) -> None:
        self.top = top
        self.cap = cap
        self._named: set[str] = set()
        self._traffic: Counter[str] = Counter()
        self._events = 0
        self._lock = threading.Lock()  # activities count from threads

    def configure(self, *, top: int, cap: int) -> None:
        self.top, self.cap = top, cap

    def label(self, slug: str | None, tier: str | None, *, traffic: bool = True) -> str:
        """The `tenant` label value: the slug when the tenant is named, else `__other__`.
        `traffic=False` for reads (a scrape) that should not count as the tenant's activity."""
        if slug is None:
            return OTHER
        if traffic:
            with self._lock:
                self._traffic[slug] += 1
                self._events += 1
                rerank = self._events % RANK_EVERY == 0
            if rerank:
                self.rank()
        if slug in self._named:
            return slug
        if tier == ENTERPRISE or (traffic and len(self._named) < self.top):
            return slug if self._admit(slug) else OTHER
        return OTHER

    def rank(self) -> None:
        """Name the current top K by traffic, keeping every tenant named before."""
        with self._lock:
            top = heapq.nlargest(self.top, self._traffic.items(), key=lambda item: item[1])
        for slug, _ in top:
            self._admit(slug)

    def named(self) -> frozenset[str]:
        return frozenset(self._named)

    def _admit(self, slug: str) -> bool:
        with self._lock:
            if slug in self._named:
                return True
            if len(self._named) >= self.cap:
                return False
            self._named.add(slug)
            return True


# One per process: each API process and the worker names tenants from the traffic it sees.
TENANTS = TenantLabels()


def tenant_label(tenant, *, traffic: bool = True) -> str:
    """`tenant`: anything with `slug` and `tier` (a TenantRef, a policy), or None."""
    if tenant is None:
        return OTHER
    return TENANTS.label(tenant.slug, tenant.tier, traffic=traffic)
