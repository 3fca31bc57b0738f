"""Security core: API keys bound to their creator, an audit log the application cannot rewrite,
an expiring bootstrap token, and tenant changes pushed to every process.

- `api_keys.created_by_user_id`: the user whose role caps the key; removing the user leaves the
  key without a creator, and such a key does nothing. Existing keys are matched to their creator
  by the name the audit log gave them (`user:<email>`); a key that matches nobody (made by another
  key, or by a user since removed) stays without one, and so stops working.
- The audit log: the application role keeps only SELECT and INSERT on `audit_events` and only
  SELECT on `audit_heads`. A trigger owned by the owner role checks that every new event follows
  the chain's head and advances the head itself; purging a deleted tenant's events is
  `audit_purge()`, which only the owner role may run.
- Anchors: `audit_anchor()` signs a tenant's head (tenant, seq, hash, time) with HMAC-SHA256
  under a key in `audit_signing_keys`, a table the application role cannot read, and keeps the
  signature in `audit_anchors`, which it can read but not change; `audit_latest_anchor()` tells
  whether the newest anchor's signature holds. Both run with the owner's rights, so the API and
  the worker get heads signed and checked without ever holding the key. Anchors are the
  platform's evidence, kept after a tenant is deleted: a control-plane table (`tenant`, not
  `tenant_id`).
- `operator_tokens.expires_at`: a generated bootstrap token lasts 24 hours.
- A change of a tenant's tier, limit overrides or status NOTIFYs every process's cache (the
  configuration channel), whichever path made it.

Revision ID: 0011
Revises: 0012
Create Date: 2026-12-02
"""

import secrets

import sqlalchemy as sa
from alembic import op

from tenantry.db.migrations.rls import APP_ROLE

revision = "0011"
down_revision = "0014"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)

# Row-level security is forced for the owner too: reach each tenant's rows as that tenant.
MATCH_KEY_CREATORS = """
DO $$
DECLARE t uuid;
BEGIN
    FOR t IN SELECT id FROM tenants LOOP
        PERFORM set_config('tenantry.tenant_id', t::text, true);
        UPDATE api_keys k SET created_by_user_id = u.id
        FROM users u
        WHERE k.tenant_id = t AND u.tenant_id = t AND k.created_by = 'user:' || u.email;
    END LOOP;
    PERFORM set_config('tenantry.tenant_id', '', true);
END $$
"""

TENANT_CHANGED = """
CREATE FUNCTION tenants_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('tenantry_config', NEW.cache_prefix);
    RETURN NEW;
END $$
"""

# The chain's head moves only here, with the owner's rights: an event must follow the head.
CHAIN_TRIGGER = """
CREATE FUNCTION audit_events_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE head_seq bigint; head_hash text;
BEGIN
    -- Row-level security checks the row after BEFORE triggers: refuse another tenant's first,
    -- as it would (this function may only see the transaction's tenant's head anyway).
    IF NEW.tenant_id IS DISTINCT FROM
            nullif(current_setting('tenantry.tenant_id', true), '')::uuid THEN
        RAISE EXCEPTION 'new row violates row-level security policy for table "audit_events"'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT h.seq, h.hash INTO head_seq, head_hash
    FROM audit_heads h WHERE h.tenant_id = NEW.tenant_id FOR UPDATE;
    IF NOT FOUND THEN
        head_seq := 0;
        head_hash := repeat('0', 64);
    END IF;
    IF NEW.seq IS DISTINCT FROM head_seq + 1 OR NEW.prev_hash IS DISTINCT FROM head_hash THEN
        RAISE EXCEPTION 'audit event % does not follow the head of its chain (%)', NEW.seq, head_seq
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.hash !~ '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'audit event % has no SHA-256 hash', NEW.seq
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    INSERT INTO audit_heads (tenant_id, seq, hash) VALUES (NEW.tenant_id, NEW.seq, NEW.hash)
    ON CONFLICT (tenant_id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash;
    RETURN NEW;
END $$
"""

# HMAC-SHA256 (RFC 2104) from the built-in sha256(), so that no extension is needed.
HMAC = """
CREATE FUNCTION audit_hmac(key bytea, message bytea) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog AS $$
DECLARE k bytea := key; inner_pad bytea; outer_pad bytea;
BEGIN
    IF length(k) > 64 THEN
        k := sha256(k);
    END IF;
    k := k || decode(repeat('00', 64 - length(k)), 'hex');
    inner_pad := k;
    outer_pad := k;
    FOR i IN 0..63 LOOP
        inner_pad := set_byte(inner_pad, i, get_byte(k, i) # 54);
        outer_pad := set_byte(outer_pad, i, get_byte(k, i) # 92);
    END LOOP;
    RETURN sha256(outer_pad || sha256(inner_pad || message));
END $$
"""

# What an anchor signs: tenant, seq, hash and time, in one fixed text form.
ANCHOR_MESSAGE = """
CREATE FUNCTION audit_anchor_message(tenant uuid, seq bigint, hash text, signed_at timestamptz)
RETURNS bytea LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
    SELECT convert_to(
        format('%s|%s|%s|%s', tenant, seq, hash,
               to_char(signed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')),
        'UTF8')
$$
"""

# Sign the current tenant's head (nothing when its chain is empty) and keep the anchor.
ANCHOR = """
CREATE FUNCTION audit_anchor()
RETURNS TABLE (tenant uuid, seq bigint, hash text, signed_at timestamptz, key_id integer,
               signature text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    t uuid := nullif(current_setting('tenantry.tenant_id', true), '')::uuid;
    head_seq bigint; head_hash text; signing_id integer; signing_key bytea;
    now_ timestamptz := clock_timestamp();
BEGIN
    IF t IS NULL THEN
        RAISE EXCEPTION 'audit_anchor() needs the tenant set' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT h.seq, h.hash INTO head_seq, head_hash FROM audit_heads h WHERE h.tenant_id = t;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT k.id, k.key INTO signing_id, signing_key
    FROM audit_signing_keys k ORDER BY k.id DESC LIMIT 1;
    RETURN QUERY
    INSERT INTO audit_anchors AS a (tenant, seq, hash, signed_at, key_id, signature)
    VALUES (t, head_seq, head_hash, now_, signing_id,
            encode(audit_hmac(signing_key, audit_anchor_message(t, head_seq, head_hash, now_)),
                   'hex'))
    RETURNING a.tenant, a.seq, a.hash, a.signed_at, a.key_id, a.signature;
END $$
"""

# Anchor every tenant whose head moved past its newest anchor: the periodic anchoring.
ANCHOR_MOVED = """
CREATE FUNCTION audit_anchor_moved()
RETURNS TABLE (tenant uuid, seq bigint, hash text, signed_at timestamptz, key_id integer,
               signature text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE t uuid; head_seq bigint;
BEGIN
    FOR t IN SELECT id FROM tenants WHERE status <> 'deleted' ORDER BY id LOOP
        PERFORM set_config('tenantry.tenant_id', t::text, true);
        SELECT h.seq INTO head_seq FROM audit_heads h WHERE h.tenant_id = t;
        IF FOUND AND head_seq > coalesce(
            (SELECT a.seq FROM audit_anchors a WHERE a.tenant = t ORDER BY a.id DESC LIMIT 1), 0
        ) THEN
            RETURN QUERY SELECT * FROM audit_anchor();
        END IF;
    END LOOP;
    PERFORM set_config('tenantry.tenant_id', '', true);
END $$
"""

LATEST_ANCHOR = """
CREATE FUNCTION audit_latest_anchor(of_tenant uuid)
RETURNS TABLE (seq bigint, hash text, signed_at timestamptz, valid boolean)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT a.seq, a.hash, a.signed_at,
           a.signature = encode(audit_hmac(k.key,
               audit_anchor_message(a.tenant, a.seq, a.hash, a.signed_at)), 'hex')
    FROM audit_anchors a JOIN audit_signing_keys k ON k.id = a.key_id
    WHERE a.tenant = of_tenant
    ORDER BY a.id DESC LIMIT 1
$$
"""

# The owner's alone: a deleted tenant's audit log, once its deletion anchored the final head.
PURGE = """
CREATE FUNCTION audit_purge(of_tenant uuid) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
DECLARE removed bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tenants WHERE id = of_tenant AND status = 'deleted') THEN
        RAISE EXCEPTION 'only a deleted tenant''s audit log is purged'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM set_config('tenantry.tenant_id', of_tenant::text, true);
    PERFORM set_config('tenantry.purging', of_tenant::text, true);
    DELETE FROM audit_events WHERE tenant_id = of_tenant;
    GET DIAGNOSTICS removed = ROW_COUNT;
    DELETE FROM audit_heads WHERE tenant_id = of_tenant;
    PERFORM set_config('tenantry.purging', '', true);
    PERFORM set_config('tenantry.tenant_id', '', true);
    RETURN removed;
END $$
"""


def upgrade() -> None:
    _api_key_creators()
    _audit_chain()
    _audit_anchors()
    op.add_column("operator_tokens", sa.Column("expires_at", TS))
    op.execute(TENANT_CHANGED)
    op.execute(
        "CREATE TRIGGER tenants_notify_change AFTER UPDATE ON tenants FOR EACH ROW "
        "WHEN (OLD.tier IS DISTINCT FROM NEW.tier "
        "OR OLD.limit_overrides IS DISTINCT FROM NEW.limit_overrides "
        "OR OLD.status IS DISTINCT FROM NEW.status) "
        "EXECUTE FUNCTION tenants_notify_change()"
    )


def _api_key_creators() -> None:
    op.add_column("api_keys", sa.Column("created_by_user_id", sa.Uuid))
    op.execute(
        "ALTER TABLE api_keys ADD CONSTRAINT fk_api_keys_created_by_user "
        "FOREIGN KEY (tenant_id, created_by_user_id) REFERENCES users (tenant_id, id) "
        "ON DELETE SET NULL (created_by_user_id)"
    )
    op.create_index(
        "ix_api_keys_tenant_id_created_by_user_id", "api_keys", ["tenant_id", "created_by_user_id"]
    )
    op.execute(MATCH_KEY_CREATORS)


def _audit_chain() -> None:
    op.execute(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM {APP_ROLE}")
    op.execute(f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_heads FROM {APP_ROLE}")
    op.execute(CHAIN_TRIGGER)
    op.execute(
        "CREATE TRIGGER audit_events_chain BEFORE INSERT ON audit_events "
        "FOR EACH ROW EXECUTE FUNCTION audit_events_chain()"
    )
    op.execute(PURGE)
    op.execute("REVOKE ALL ON FUNCTION audit_purge(uuid) FROM PUBLIC")


def _audit_anchors() -> None:
    op.create_table(
        "audit_signing_keys",
        sa.Column("id", sa.Integer, sa.Identity(always=True), primary_key=True),
        sa.Column("key", sa.LargeBinary, nullable=False),
        sa.Column("created_at", TS, nullable=False, server_default=sa.func.now()),
    )
    op.execute(f"REVOKE ALL ON audit_signing_keys FROM PUBLIC, {APP_ROLE}")
    op.get_bind().execute(
        sa.text("INSERT INTO audit_signing_keys (key) VALUES (:key)"),
        {"key": secrets.token_bytes(32)},
    )
    op.create_table(
        "audit_anchors",
        sa.Column("id", sa.BigInteger, sa.Identity(always=True), primary_key=True),
        sa.Column("tenant", sa.Uuid, sa.ForeignKey("tenants.id"), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
        sa.Column("signed_at", TS, nullable=False),
        sa.Column("key_id", sa.Integer, sa.ForeignKey("audit_signing_keys.id"), nullable=False),
        sa.Column("signature", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_anchors_tenant_id", "audit_anchors", ["tenant", "id"])
    op.execute(f"GRANT SELECT ON audit_anchors TO {APP_ROLE}")
    for statement in (HMAC, ANCHOR_MESSAGE, ANCHOR, ANCHOR_MOVED, LATEST_ANCHOR):
        op.execute(statement)
    for function in (
        "audit_hmac(bytea, bytea)",
        "audit_anchor_message(uuid, bigint, text, timestamptz)",
    ):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
    for function in ("audit_anchor()", "audit_anchor_moved()", "audit_latest_anchor(uuid)"):
        op.execute(f"REVOKE ALL ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {APP_ROLE}")


def downgrade() -> None:
    op.execute("DROP TRIGGER tenants_notify_change ON tenants")
    op.execute("DROP FUNCTION tenants_notify_change()")
    op.drop_column("operator_tokens", "expires_at")
    for function in (
        "audit_latest_anchor(uuid)",
        "audit_anchor_moved()",
        "audit_anchor()",
        "audit_anchor_message(uuid, bigint, text, timestamptz)",
        "audit_hmac(bytea, bytea)",
        "audit_purge(uuid)",
    ):
        op.execute(f"DROP FUNCTION {function}")
    op.drop_table("audit_anchors")
    op.drop_table("audit_signing_keys")
    op.execute("DROP TRIGGER audit_events_chain ON audit_events")
    op.execute("DROP FUNCTION audit_events_chain()")
    op.execute(f"GRANT INSERT, UPDATE, DELETE ON audit_heads TO {APP_ROLE}")
    op.execute(f"GRANT DELETE ON audit_events TO {APP_ROLE}")
    op.drop_index("ix_api_keys_tenant_id_created_by_user_id", "api_keys")
    op.execute("ALTER TABLE api_keys DROP CONSTRAINT fk_api_keys_created_by_user")
    op.drop_column("api_keys", "created_by_user_id")
