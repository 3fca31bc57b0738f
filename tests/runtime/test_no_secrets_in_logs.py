"""A whole `tenantry run` session logs no secret: its console (every process's stdout and stderr)
and the log files under its home are scanned, after the bootstrap, operator and user logins
(good and bad passwords), refreshes, API keys used every way, and a webhook whose URL holds
secrets and whose deliveries fail, for every token, key, password and webhook secret used."""

from __future__ import annotations

import httpx
import pytest

from tenantry.identity.tokens import API_KEY_PREFIX, parse_tenant_secret
from tests.runtime.helpers import PASSWORD, Run, fresh_home, remove_home
from tests.servers import free_port

pytestmark = pytest.mark.slow

OPERATOR_PASSWORD = "Operator-Pass-8842-Zebra"
WRONG_PASSWORD = "Wrong-Guess-5519-Kettle"
HOOK_PATH = "hooks/PATH-SECRET-4f2a9c"
HOOK_QUERY = "token=QUERY-SECRET-91be7d"


def session_of_secrets(run: Run) -> list[str]:
    """Everything an operator, a tenant's people and its systems would do; the secrets used."""
    token = run.bootstrap_token()
    secrets = [token, OPERATOR_PASSWORD, WRONG_PASSWORD, PASSWORD, HOOK_PATH, HOOK_QUERY]
    http = httpx.Client(base_url=run.url, timeout=60)
    ops = {"email": "ops@tenantry.dev", "password": OPERATOR_PASSWORD}
    created = http.post(
        "/v1/admin/operators",
        json={**ops, "name": "Ops"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert created.status_code == 201, created.text
    wrong = http.post("/v1/admin/auth/login", json={**ops, "password": WRONG_PASSWORD})
    assert wrong.status_code == 401
    operator_token = http.post("/v1/admin/auth/login", json=ops).json()["access_token"]
    operator = {"Authorization": f"Bearer {operator_token}"}
    secrets.append(operator_token)

    user = {"email": "ana@chogar.example", "password": PASSWORD, "role": "admin"}
    made = http.post("/v1/admin/tenants/chogar/users", json=user, headers=operator)
    assert made.status_code == 201, made.text
    login = {"tenant": "chogar", "email": user["email"]}
    assert (
        http.post("/v1/auth/login", json={**login, "password": WRONG_PASSWORD}).status_code == 401
    )
    first = http.post("/v1/auth/login", json={**login, "password": PASSWORD}).json()
    second = http.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    retried = http.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert retried.status_code in (200, 401)
    secrets += [first["access_token"], first["refresh_token"]]
    secrets += [second["access_token"], second["refresh_token"]]
    access = {"Authorization": f"Bearer {second['access_token']}"}

    key = http.post("/v1/api-keys", json={"name": "ci", "scopes": ["admin"]}, headers=access)
    assert key.status_code == 201, key.text
    secret_key = key.json()["key"]
    # Its secret part as the platform parses it (the random part may itself contain "_").
    secrets += [secret_key, parse_tenant_secret(API_KEY_PREFIX, secret_key).secret]
    assert http.get("/v1/me", headers={"X-API-Key": secret_key}).status_code == 200
    assert http.get("/v1/me", headers={"Authorization": f"Bearer {secret_key}"}).status_code == 200
    tampered = secret_key[:-4] + ("AAAA" if not secret_key.endswith("AAAA") else "BBBB")
    assert http.get("/v1/me", headers={"X-API-Key": tampered}).status_code == 401
    secrets.append(parse_tenant_secret(API_KEY_PREFIX, tampered).secret)

    # Nobody listens there: every delivery fails, and the failures are logged.
    hook_url = f"http://127.0.0.1:{free_port()}/{HOOK_PATH}?{HOOK_QUERY}"
    hook = http.post("/v1/webhooks", json={"url": hook_url}, headers=access)
    assert hook.status_code == 201, hook.text
    secrets.append(hook.json()["secret"])
    mark = len(run.lines)
    incident = http.post(
        "/v1/incidents",
        json={"title": "Caldera", "description": "La caldera no arranca tras el apagón."},
        headers={"X-API-Key": secret_key},
    )
    assert incident.status_code == 201, incident.text
    run.wait_for("events.deliver", start=mark)  # the worker logs the failed delivery
    audit = http.get("/v1/admin/tenants/chogar/audit/verify", headers=operator)
    assert audit.json()["ok"] is True
    return secrets


def test_a_whole_run_logs_no_token_key_password_or_webhook_secret():
    home = fresh_home()
    run = Run(home, TENANTRY_API_PROCESSES="1", TENANTRY_EGRESS_ALLOWLIST='["127.0.0.1"]')
    try:
        assert "tnop_" not in run.text  # the banner names the token's file, never the token
        secrets = session_of_secrets(run)
        secrets.append((home / "jwt_secret").read_text().strip())
        assert run.stop() == 0
        logs = {"console": run.text}
        for path in home.rglob("*.log"):
            logs[str(path.relative_to(home))] = path.read_text(errors="replace")
        assert len(run.text.splitlines()) > 20  # requests and the worker were logged
        leaked = {
            (where, secret[:12] + "…")
            for secret in secrets
            for where, text in logs.items()
            if secret in text
        }
        assert leaked == set()
    finally:
        run.cleanup()
        remove_home(home)
