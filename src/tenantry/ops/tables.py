"""What a backup does with each tenant-owned table, and what the database says about its columns.

Every table with `tenant_id` is one of three kinds, and tests/ops/test_tables.py fails the build
when a table is added without being placed here:

- DATA: the tenant's own data. Exported, and replaced by a restore (or copied by a clone).
- AUDIT: the audit chain and its head. Exported and verified, never imported: the chain is
  append-only, so a restore appends a `tenant.restored` event to the live chain, and a clone starts
  a chain of its own whose first event names the archive it came from.
- RUNTIME: state that belongs to the live tenant's running work and to its platform, not to its
  data. Not exported; a restore leaves the live rows as they are:
  the outbox, workflow slots, paused workflows and keyed activity effects describe workflows that
  live in Temporal, not in the archive; Idempotency-Key answers are replays of requests made to
  the live tenant (a client that retries a request across a restore may see it run again);
  the data key (`tenant_keys`) encrypts the tenant's Temporal payloads and is bound to its id, and
  a tenant's deletion destroys it on purpose (an archive must not bring it back); usage counts
  are what was metered and billed, which a restore does not undo; an OIDC login in flight is
  a browser's, minutes long.

Secrets inside DATA rows are exported as the database holds them, so an archive is as
sensitive as the database itself (keep the backup store as private as its servers): webhook
signing secrets in clear, the OIDC client secret sealed with the platform's secrets key and the
tenant's id (a clone, a new id, cannot open it: its admin enters the client secret again),
password hashes and the SHA-256 digests of API keys and refresh tokens (not secrets that
authenticate; API keys name their tenant's id, so a clone's copies authenticate nobody).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.db.catalog import tenant_tables

DATA = frozenset(
    {
        "users",
        "refresh_tokens",
        "api_keys",
        "ldap_configs",
        "user_identities",
        "oidc_configs",
        "config_versions",
        "documents",
        "document_contents",
        "chunks",
        "incident_counters",
        "incidents",
        "incident_events",
        "webhook_endpoints",
        "webhook_deliveries",
    }
)
AUDIT = ("audit_events", "audit_heads")
RUNTIME = frozenset(
    {
        "outbox",
        "workflow_slots",
        "paused_workflows",
        "activity_effects",
        "idempotency_keys",
        "tenant_keys",
        "usage_daily",
        "slo_hourly",  # per-hour request counts, the SLO windows: measurements, not data
        "oidc_logins",
        "cell_changes_applied",
    }
)

COLUMNS = text(
    """
    SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attgenerated <> '',
           coalesce(a.attnum = ANY (k.conkey), false)
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_constraint k ON k.conrelid = c.oid AND k.contype = 'p'
    WHERE n.nspname = 'public' AND c.relname = :table AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attnum
    """
)
PRIMARY_KEY = text(
    """
    SELECT a.attname
    FROM pg_constraint k
    JOIN pg_class c ON c.oid = k.conrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN LATERAL unnest(k.conkey) WITH ORDINALITY AS key(attnum, position) ON true
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = key.attnum
    WHERE n.nspname = 'public' AND c.relname = :table AND k.contype = 'p'
    ORDER BY key.position
    """
)


class UnclassifiedTable(RuntimeError):
    """A tenant-owned table this module does not place: a backup would not know what to do."""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    generated: bool
    in_primary_key: bool


@dataclass(frozen=True)
class TableInfo:
    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]

    @property
    def insertable(self) -> list[str]:
        return [c.name for c in self.columns if not c.generated]

    @property
    def id_columns(self) -> list[str]:
        """Primary-key columns that hold ids of the tenant's own objects (not the tenant's)."""
        return [
            c.name
            for c in self.columns
            if c.in_primary_key and c.type == "uuid" and c.name != "tenant_id"
        ]


def kind_of(table: str) -> str:
    if table in DATA:
        return "data"
    if table in AUDIT:
        return "audit"
    if table in RUNTIME:
        return "runtime"
    raise UnclassifiedTable(
        f"The tenant-owned table '{table}' is not classified for backups: add it to DATA, "
        "AUDIT or RUNTIME in tenantry/ops/tables.py."
    )


async def exported_tables(session: AsyncSession) -> list[str]:
    """DATA and AUDIT tables in foreign-key order: a table after every table it references."""
    ordered = list(reversed(await tenant_tables(session)))
    return [t for t in ordered if kind_of(t) != "runtime"]


async def table_info(session: AsyncSession, table: str) -> TableInfo:
    rows = (await session.execute(COLUMNS, {"table": table})).all()
    key = tuple((await session.scalars(PRIMARY_KEY, {"table": table})).all())
    columns = tuple(Column(*row) for row in rows)
    return TableInfo(table, columns, key)
