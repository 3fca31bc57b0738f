"""Rules every tenant-owned table must follow, read from PostgreSQL's own catalog."""

from __future__ import annotations

import re

APP_ROLE = "tenantry_app"
TENANT_PINNED = re.compile(r"\(?tenant_id = '[0-9a-f-]{36}'::uuid\)?")


def violations(conn) -> list[str]:
    found: list[str] = []
    tables = conn.execute(
        """
        SELECT c.oid, c.relname, c.relrowsecurity, c.relforcerowsecurity
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
        """
    ).fetchall()
    for oid, name, rls, forced in tables:
        if not rls:
            found.append(f"{name}: row-level security is not enabled")
        if not forced:
            found.append(f"{name}: row-level security is not forced")
        found += _policy_violations(conn, oid, name)
        found += _index_violations(conn, oid, name)
    found += _role_violations(conn)
    found += _view_violations(conn)
    return found


def _policy_violations(conn, oid: int, name: str) -> list[str]:
    policies = conn.execute(
        """
        SELECT polname, polcmd, pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid)
        FROM pg_policy WHERE polrelid = %s
        """,
        [oid],
    ).fetchall()
    if len(policies) != 1:
        return [f"{name}: expected one policy, found {len(policies)}"]
    _, command, using, check = policies[0]
    setting = "current_setting('tenantry.tenant_id'::text, true)"
    problems = []
    if command != "*":
        problems.append(f"{name}: the policy must cover every command")
    for label, expr in (("USING", using), ("WITH CHECK", check)):
        if not expr or setting not in expr or "SELECT" not in expr or "tenant_id =" not in expr:
            problems.append(f"{name}: {label} must compare tenant_id to (SELECT {setting})")
    return problems


def _index_violations(conn, oid: int, name: str) -> list[str]:
    rows = conn.execute(
        """
        SELECT i.relname, a.attname, pg_get_expr(x.indpred, x.indrelid)
        FROM pg_index x
        JOIN pg_class i ON i.oid = x.indexrelid
        LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]
        WHERE x.indrelid = %s
        """,
        [oid],
    ).fetchall()
    # A tenant's own index (a partial index pinned to one tenant) needs no tenant_id column.
    return [
        f"{name}: index {index} does not lead with tenant_id"
        for index, first, predicate in rows
        if first != "tenant_id" and not TENANT_PINNED.fullmatch(predicate or "")
    ]


def _role_violations(conn) -> list[str]:
    problems = []
    for role, superuser, bypass in conn.execute(
        "SELECT rolname, rolsuper, rolbypassrls FROM pg_roles WHERE rolname IN ('tenantry_app', 'tenantry_owner')"
    ).fetchall():
        if superuser or bypass:
            problems.append(f"role {role} can bypass row-level security")
    owned = conn.execute(
        """
        SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND pg_has_role(%s, c.relowner, 'MEMBER')
        """,
        [APP_ROLE],
    ).fetchall()
    problems += [f"{APP_ROLE} owns {relname}" for (relname,) in owned]
    return problems


def _view_violations(conn) -> list[str]:
    rows = conn.execute(
        """
        SELECT c.relname, r.rolsuper OR r.rolbypassrls, coalesce(c.reloptions, '{}')
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_roles r ON r.oid = c.relowner
        WHERE n.nspname = 'public' AND c.relkind IN ('v', 'm')
        """
    ).fetchall()
    problems = []
    for view, privileged_owner, options in rows:
        if privileged_owner:
            problems.append(f"view {view} is owned by a role that bypasses row-level security")
        if "security_invoker=true" not in options:
            problems.append(f"view {view} must be security_invoker")
    return problems
