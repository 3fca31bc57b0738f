"""Parallel writes in one tenant: what comes back, how long it takes, and how often the retry safety
net had to act.

Starts its own embedded PostgreSQL in a temporary home and the API under uvicorn in a subprocess
(its own event loop and pool, as in production), one standard tenant with an owner, an admin and
40 members (its concurrency limit raised to 64, and shedding by loop lag off, so that neither
refuses the bursts), then fires the cases issue 9 found broken, each all at once (asyncio.gather over
keep-alive connections), for several rounds:

* logins:     8 correct logins of different users;
* api_keys:   12 `POST /v1/api-keys`;
* mixed:      35 audited writes of every kind (logins, keys, users, webhooks, config patches);
* throttle:   40 wrong passwords for one account (limit 5 a minute: expect 5 x 401, 35 x 429);
* users:      a tenant with 4 of 5 users, 8 `POST /v1/users` (expect 1 x 201, 7 x 403);
* refresh:    10 refreshes of one refresh token (expect 10 x 200, one live session).

For each round: the answers by status (and problem type), the wall time of the burst and its
slowest answer. After all rounds: whether the tenant's audit chain verifies, and how many
transactions the server had to run again (its "transaction conflict" warnings): the design avoids
deadlocks, so this should be zero, the retries being a safety net only.

In-process, what the request path pays for the concurrency machinery: the retry wrapper around
every request (an ASGI no-op, with and without it), and one rate-limit hit plus its window stats
(what the limits middleware does per request) with the moving window against the sliding-window
counter it replaced, on the in-memory storage over 100 tenants.

Run from the repository root:  .venv/bin/python bench/concurrency.py
Results: printed, and written to bench/results/concurrency.json.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from collections import Counter
from typing import Any

import httpx

from common import (
    free_port,
    machine,
    now_iso,
    serve,
    server_version,
    start_server,
    stop_server,
    table,
    temporary_stack,
    wait_until_up,
    write_json,
)

ROUNDS = 3
SLUG = "bench-conc"
PASSWORD = "Correct-Horse-42-Battery"
OPERATOR_TOKEN = "tnop_bench-concurrency-" + uuid.uuid4().hex


async def burst(calls) -> tuple[Counter, float, float]:
    """Fire all calls at once: (answers by status and problem, wall seconds, slowest answer)."""

    async def timed(call):
        started = time.perf_counter()
        try:
            response = await call
        except httpx.TransportError as error:  # no answer at all (a timeout, say)
            return type(error).__name__, time.perf_counter() - started
        code = str(response.status_code)
        if response.status_code >= 400:  # which problem, by the last part of its type
            code += " " + response.json().get("type", "").rsplit("/", 1)[-1].rsplit("#", 1)[-1]
        return code, time.perf_counter() - started

    started = time.perf_counter()
    answers = await asyncio.gather(*(timed(call) for call in calls))
    wall = time.perf_counter() - started
    return Counter(code for code, _ in answers), wall, max(t for _, t in answers)


async def main() -> None:
    from tenantry.identity import bootstrap

    started = time.perf_counter()
    with temporary_stack("concurrency") as stack:
        version = server_version(stack)
        db = stack.database()
        async with db.control() as session:
            await bootstrap.provision(session, given=OPERATOR_TOKEN, home=stack.settings.home)
        await db.dispose()
        home = stack.settings.home
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
        env.update(
            TENANTRY_HOME=str(home),
            TENANTRY_DATABASE_URL=stack.admin_url,
            TENANTRY_PORT=str(port),
            TENANTRY_LOG_LEVEL="WARNING",
            TENANTRY_LOG_JSON="false",
            TENANTRY_DEMO_TENANTS="false",
            TENANTRY_EGRESS_ALLOWLIST='["127.0.0.1"]',
            # Argon2 on two cores lags the loop; load shedding is measured elsewhere (noisy_neighbor).
            TENANTRY_LOOP_LAG_THRESHOLD_MS="60000",
        )
        log = home / "server.log"
        proc = start_server(__file__, env, log)
        base = f"http://127.0.0.1:{port}"
        try:
            await wait_until_up(base, proc, log)
            limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
            async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as http:
                results = await scenarios(http, stack)
        finally:
            stop_server(proc)
        retried = log.read_text().count("transaction conflict, retrying")
        unresolved = log.read_text().count("transaction conflict not resolved")
    wall_s = time.perf_counter() - started
    data = {
        "generated": now_iso(),
        "machine": machine(),
        "postgres": version,
        "rounds": ROUNDS,
        "cases": results["cases"],
        "audit_chain": results["chain"],
        "transactions_retried": retried,
        "conflicts_unresolved": unresolved,
        "wall_s": round(wall_s, 1),
    }
    data["in_process_us"] = costs = await request_path_costs()
    path = write_json("concurrency.json", data)
    rows = [
        [name, r, dict(sorted(c["statuses"].items())), c["burst_ms"], c["slowest_ms"]]
        for name, case in results["cases"].items()
        for r, c in enumerate(case, start=1)
    ]
    print(table(["case", "round", "statuses", "burst ms", "slowest ms"], rows, left=3))
    print()
    print(f"audit chain: {results['chain']}")
    print(f"transactions run again by the safety net: {retried}; unresolved (503): {unresolved}")
    print(f"per request, in process (µs): {costs}")
    print(f"Wall time {wall_s:.1f} s; JSON: {path}")


async def request_path_costs(n: int = 20_000) -> dict[str, float]:
    from types import SimpleNamespace

    from limits import RateLimitItemPerMinute
    from limits.aio.storage import MemoryStorage
    from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter

    from tenantry.db.retry import RetryPolicy
    from tenantry.retry_middleware import RetryTransactions

    async def noop(scope, receive, send) -> None:
        return None

    state = SimpleNamespace(db=SimpleNamespace(retrying=RetryPolicy().retrying))
    wrapped = RetryTransactions(noop, state=state, replay_limit=1 << 20)
    scope = {"type": "http", "path": "/"}

    async def per_call(app) -> float:
        started = time.perf_counter()
        for _ in range(n):
            await app(scope, None, None)
        return (time.perf_counter() - started) / n * 1e6

    async def per_hit(cls) -> float:
        limiter, item = cls(MemoryStorage()), RateLimitItemPerMinute(600)
        started = time.perf_counter()
        for i in range(n):
            await limiter.hit(item, "default", str(i % 100))
            await limiter.get_window_stats(item, "default", str(i % 100))
        return (time.perf_counter() - started) / n * 1e6

    return {
        "retry_wrapper": round(await per_call(wrapped) - await per_call(noop), 2),
        "rate_hit_moving_window": round(await per_hit(MovingWindowRateLimiter), 2),
        "rate_hit_sliding_counter": round(await per_hit(SlidingWindowCounterRateLimiter), 2),
    }


async def scenarios(http: httpx.AsyncClient, stack) -> dict[str, Any]:
    boot = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    email = f"ops-{uuid.uuid4().hex[:6]}@bench.dev"
    (
        await http.post(
            "/v1/admin/operators",
            json={"email": email, "name": "Ops", "password": PASSWORD},
            headers=boot,
        )
    ).raise_for_status()
    token = (
        await http.post("/v1/admin/auth/login", json={"email": email, "password": PASSWORD})
    ).json()["access_token"]
    ops = {"Authorization": f"Bearer {token}"}
    (
        await http.post(
            "/v1/admin/tenants",
            json={"slug": SLUG, "name": "Bench", "tier": "standard"},
            headers=ops,
        )
    ).raise_for_status()

    async def user(role: str) -> str:
        address = f"{role}-{uuid.uuid4().hex[:8]}@bench.example"
        answer = await http.post(
            f"/v1/admin/tenants/{SLUG}/users",
            json={"email": address, "password": PASSWORD, "role": role},
            headers=ops,
        )
        answer.raise_for_status()
        return address

    def login(address: str, password: str = PASSWORD, client: str = "198.51.100.1"):
        # Each case from its own client address (uvicorn trusts X-Forwarded-For from loopback),
        # so the throttle case's failures do not lock out the others.
        return http.post(
            "/v1/auth/login",
            json={"tenant": SLUG, "email": address, "password": password},
            headers={"X-Forwarded-For": client},
        )

    async def bearer(address: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {(await login(address)).json()['access_token']}"}

    owner, admin = await bearer(await user("owner")), await bearer(await user("admin"))
    members = [await user("member") for _ in range(40)]

    def mixed():
        calls = [login(m) for m in members[:8]]
        calls += [
            http.post("/v1/api-keys", json={"name": f"m{i}", "scopes": ["read"]}, headers=admin)
            for i in range(8)
        ]
        calls += [
            http.post(
                "/v1/users",
                json={"email": f"x-{uuid.uuid4().hex[:8]}@bench.example", "password": PASSWORD},
                headers=owner,
            )
            for _ in range(6)
        ]
        calls += [
            http.post("/v1/webhooks", json={"url": f"http://127.0.0.1:9/{i}"}, headers=admin)
            for i in range(6)
        ]
        calls += [
            http.patch(
                "/v1/config", json={"branding": {"accent_color": f"#00000{i}"}}, headers=admin
            )
            for i in range(7)
        ]
        return calls

    cases: dict[str, list[dict[str, Any]]] = {}

    async def record(name: str, calls) -> None:
        statuses, wall, slowest = await burst(calls)
        cases.setdefault(name, []).append(
            {
                "statuses": dict(sorted(statuses.items())),
                "burst_ms": round(wall * 1000, 1),
                "slowest_ms": round(slowest * 1000, 1),
            }
        )

    for r in range(ROUNDS):
        await record("logins", [login(m) for m in members[8 * r : 8 * r + 8]])
        raised = {"api_keys": 1000, "users": 10_000, "concurrent_requests": 64}
        (
            await http.patch(f"/v1/admin/tenants/{SLUG}/limits", json=raised, headers=ops)
        ).raise_for_status()
        await record(
            "api_keys",
            [
                http.post("/v1/api-keys", json={"name": f"k{i}", "scopes": ["read"]}, headers=admin)
                for i in range(12)
            ],
        )
        await record("mixed", mixed())
        victim = members[30 + r]
        await record(
            "throttle",
            [login(victim, "Wrong-Password-99", f"203.0.113.{r}") for _ in range(40)],
        )
        listed = (await http.get("/v1/users?limit=1", headers=owner)).json()["total"]
        await http.patch(
            f"/v1/admin/tenants/{SLUG}/limits", json={"users": listed + 1}, headers=ops
        )
        await record(
            "users",
            [
                http.post(
                    "/v1/users",
                    json={"email": f"q-{uuid.uuid4().hex[:8]}@bench.example", "password": PASSWORD},
                    headers=owner,
                )
                for _ in range(8)
            ],
        )
        refresh_token = (await login(members[20 + r])).json()["refresh_token"]
        await record(
            "refresh",
            [
                http.post("/v1/auth/refresh", json={"refresh_token": refresh_token})
                for _ in range(10)
            ],
        )
    chain = (await http.get(f"/v1/admin/tenants/{SLUG}/audit/verify", headers=ops)).json()
    return {"cases": cases, "chain": chain}


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        asyncio.run(main())
