"""The cost of authentication: requests per second of a JWT, an API key and no credential at all.

Starts its own embedded PostgreSQL in a temporary home, creates an enterprise tenant (its rate and
concurrency limits raised by an operator override, so the bench measures cost, not refusals) and an
admin user, then runs the application under uvicorn in a subprocess on 127.0.0.1 (so the load
generator does not share its event loop), logs in over HTTP for an access token and creates an API
key with it.

Three variants, each a GET with a tiny JSON answer:

* none:    `GET /health/live`, no credential (the middleware, routing and serialisation only);
* jwt:     `GET /v1/me` with `Authorization: Bearer <access token>` (JWT check, then one tenant
           transaction reading the user, the tenant and whether the session is revoked);
* api_key: `GET /v1/me` with `X-API-Key` (one tenant transaction reading the tenant and the key).

Both authenticated variants also pass the tenant limits (cached policy, rate and concurrency
checks, usage metering), from which `/health` is exempt.

Two load generators, each with a fixed concurrency and keep-alive connections:

* httpx: one httpx.AsyncClient;
* raw: HTTP/1.1 over asyncio streams, a pre-encoded request per connection - a cross-check, since
  httpx costs the client more CPU per request than the server spends on an unauthenticated GET,
  and on a small machine it, not the server, then sets the pace.

After a warm-up, the variants are interleaved in rounds (variant order rotated every round, client
order alternating) so drift affects all of them equally. For each it reports requests per second,
p50/p95 latency, the CPU the client, the server, PostgreSQL and anything else (other processes)
spent per request (from /proc) and how busy the machine was; and, in-process, timings of the authentication step itself (no HTTP).
Client, server and database share the machine's cores: absolute figures are a floor.

Run from the repository root:  .venv/bin/python bench/auth.py
Results: printed, and written to bench/results/auth.json.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import time
from collections.abc import Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import httpx

from common import (
    Meter,
    free_port,
    machine,
    now_iso,
    raw_load,
    serve,
    server_version,
    start_server,
    stop_server,
    summary_ms,
    table,
    temporary_stack,
    wait_until_up,
    write_json,
)

CONCURRENCY = 16
WARMUP = 300  # requests per variant before the first round
ROUNDS = 5
PER_ROUND = 1_000  # requests per variant and round
INPROCESS = 1_000  # in-process calls per authentication timing
PASSWORD = "Correct-Horse-42-Battery"
EMAIL = "bench@example.com"
SLUG = "bench"
TIER = "enterprise"  # shed last, only at full pressure
OVERRIDE_LIMITS = {"requests_per_minute": 10_000_000, "concurrent_requests": 1_000}
VARIANTS = ("none", "jwt", "api_key")
CLIENTS = ("httpx", "raw")


Load = tuple[float, list[int], int]


async def httpx_load(client: httpx.AsyncClient, path: str, headers: dict[str, str], n: int) -> Load:
    """`n` GETs with CONCURRENCY in flight: (wall seconds, latencies in ns, non-200 answers)."""
    remaining, latencies, bad = n, [], 0

    async def worker() -> None:
        nonlocal remaining, bad
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter_ns()
            response = await client.get(path, headers=headers)
            latencies.append(time.perf_counter_ns() - start)
            if response.status_code != 200:
                bad += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - start, latencies, bad


async def per_call_ms(op: Callable[[], Awaitable[Any]], n: int) -> dict[str, float]:
    for _ in range(n // 10):
        await op()
    samples = []
    for _ in range(n):
        start = time.perf_counter_ns()
        await op()
        samples.append(time.perf_counter_ns() - start)
    return summary_ms(samples)


async def main() -> None:
    from tenantry.db.session import Database
    from tenantry.identity import access_tokens, users
    from tenantry.identity.access_tokens import signing_key
    from tenantry.identity.authn import Authenticator
    from tenantry.identity.schemas import UserCreate
    from tenantry.limits import service as limits
    from tenantry.settings import Settings
    from tenantry.tenants import service as tenants
    from tenantry.tenants.schemas import TenantCreate
    from tenantry.tenants.tiers import LimitsPatch

    started = time.perf_counter()
    with temporary_stack("auth") as stack:
        version = server_version(stack)
        home = stack.settings.home
        settings = Settings(
            home=home, demo_tenants=False, log_level="WARNING", login_attempts_per_minute=1000
        )
        db: Database = stack.database()
        async with db.control() as session:
            tenant = await tenants.create(
                session,
                data=TenantCreate(slug=SLUG, name="Bench", tier=TIER),
                actor="bench",
                settings=settings,
            )
        async with db.control() as session:
            patch = LimitsPatch(**OVERRIDE_LIMITS)
            await limits.set_overrides(session, slug=SLUG, patch=patch, actor="bench")
        async with db.tenant(tenant.id) as session:
            await users.create(
                session,
                tenant_id=tenant.id,
                data=UserCreate(email=EMAIL, password=PASSWORD, role="admin"),
                actor="bench",
                actor_role=None,
            )

        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
        env.update(
            TENANTRY_HOME=str(home),
            TENANTRY_DATABASE_URL=stack.admin_url,
            TENANTRY_PORT=str(port),
            TENANTRY_LOG_LEVEL="WARNING",
            TENANTRY_DEMO_TENANTS="false",
            TENANTRY_LOGIN_ATTEMPTS_PER_MINUTE="1000",
        )
        log = home / "server.log"
        proc = start_server(__file__, env, log)
        base = f"http://127.0.0.1:{port}"
        postmaster = int((home / "pgdata" / "postmaster.pid").read_text().split()[0])
        meter = Meter(proc.pid, postmaster)
        try:
            await wait_until_up(base, proc, log)
            limits = httpx.Limits(
                max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY
            )
            async with httpx.AsyncClient(base_url=base, limits=limits) as client:
                answer = await client.post(
                    "/v1/auth/login", json={"tenant": SLUG, "email": EMAIL, "password": PASSWORD}
                )
                answer.raise_for_status()
                token = answer.json()["access_token"]
                answer = await client.post(
                    "/v1/api-keys",
                    json={"name": "bench", "scopes": ["read"]},
                    headers={"Authorization": f"Bearer {token}"},
                )
                if answer.status_code != 201:
                    raise SystemExit(f"creating the API key: {answer.status_code} {answer.text}")
                api_key = answer.json()["key"]
                requests = {
                    "none": ("/health/live", {}),
                    "jwt": ("/v1/me", {"Authorization": f"Bearer {token}"}),
                    "api_key": ("/v1/me", {"X-API-Key": api_key}),
                }
                checks = {
                    "jwt_kind": (await client.get("/v1/me", headers=requests["jwt"][1])).json()[
                        "kind"
                    ],
                    "api_key_kind": (
                        await client.get("/v1/me", headers=requests["api_key"][1])
                    ).json()["kind"],
                    "no_credential_status": (await client.get("/v1/me")).status_code,
                }
                expected = {"jwt_kind": "user", "api_key_kind": "api_key"}
                if checks != {**expected, "no_credential_status": 401}:
                    raise SystemExit(f"sanity checks failed: {checks}")

                def run(kind: str, name: str, n: int) -> Awaitable[Load]:
                    path, headers = requests[name]
                    if kind == "httpx":
                        return httpx_load(client, path, headers, n)
                    return raw_load(port, path, headers, n, CONCURRENCY)

                for kind in CLIENTS:
                    for name in VARIANTS:
                        _, _, bad = await run(kind, name, WARMUP)
                        if bad:
                            raise SystemExit(f"{kind} {name}: {bad} non-200 answers in warm-up")

                runs: dict[str, dict[str, list[dict[str, Any]]]] = {
                    kind: {name: [] for name in VARIANTS} for kind in CLIENTS
                }
                latencies: dict[str, dict[str, list[int]]] = {
                    kind: {name: [] for name in VARIANTS} for kind in CLIENTS
                }
                for r in range(ROUNDS):
                    order = VARIANTS[r % 3 :] + VARIANTS[: r % 3]
                    kinds = CLIENTS if r % 2 == 0 else CLIENTS[::-1]
                    for name in order:
                        for kind in kinds:
                            before = meter.snapshot()
                            wall, lat, bad = await run(kind, name, PER_ROUND)
                            cpu = Meter.delta(before, meter.snapshot())
                            if bad:
                                raise SystemExit(f"{kind} {name}: {bad} non-200s, round {r + 1}")
                            latencies[kind][name] += lat
                            runs[kind][name].append({"round": r + 1, "wall_s": wall, **cpu})

            # The authentication step alone, in this process, against an idle server.
            key = signing_key(settings)
            authenticate = Authenticator(SimpleNamespace(db=db, signing_key=key))

            def scope(header: str, value: str) -> dict[str, Any]:
                return {"type": "http", "headers": [(header.encode(), value.encode())]}

            jwt_scope = scope("authorization", f"Bearer {token}")
            key_scope = scope("x-api-key", api_key)

            async def decode_only() -> None:
                access_tokens.decode(key, token)

            async def empty_transaction() -> None:
                async with db.tenant(tenant.id):
                    pass

            inprocess = {
                "jwt_decode": await per_call_ms(decode_only, INPROCESS),
                "empty_tenant_transaction": await per_call_ms(empty_transaction, INPROCESS),
                "authenticate_jwt": await per_call_ms(lambda: authenticate(jwt_scope), INPROCESS),
                "authenticate_api_key": await per_call_ms(
                    lambda: authenticate(key_scope), INPROCESS
                ),
            }
        finally:
            stop_server(proc)
            await db.dispose()

    report(
        version=version,
        runs=runs,
        latencies=latencies,
        inprocess=inprocess,
        checks=checks,
        wall_s=time.perf_counter() - started,
    )


def summarise(runs: dict[str, list[dict[str, Any]]], latencies: dict[str, list[int]]) -> dict:
    variants: dict[str, Any] = {}
    for name in VARIANTS:
        n = PER_ROUND * len(runs[name])
        wall = sum(r["wall_s"] for r in runs[name])
        cpu = {
            part: round(sum(r[f"{part}_cpu_s"] for r in runs[name]) / n * 1e6, 1)
            for part in ("client", "server", "postgres", "other")
        }
        variants[name] = {
            "requests": n,
            "req_per_s": round(n / wall, 1),
            "req_per_s_by_round": [round(PER_ROUND / r["wall_s"], 1) for r in runs[name]],
            "latency": summary_ms(latencies[name]),
            "cpu_us_per_request": cpu,
            # What one fully busy server core could answer, from the server's CPU per request.
            "server_core_capacity_req_per_s": round(1e6 / cpu["server"], 1),
            "machine_busy": round(sum(r["machine_busy"] for r in runs[name]) / len(runs[name]), 3),
            "rounds": [{k: round(v, 4) for k, v in r.items()} for r in runs[name]],
        }
    none = variants["none"]
    ratios = {
        f"{name}_over_none": round(variants[name]["req_per_s"] / none["req_per_s"], 3)
        for name in ("jwt", "api_key")
    }
    capacity = {
        f"{name}_over_none": round(
            none["cpu_us_per_request"]["server"] / variants[name]["cpu_us_per_request"]["server"],
            3,
        )
        for name in ("jwt", "api_key")
    }
    return {
        "variants": variants,
        "ratios_req_per_s": ratios,
        "ratios_server_core_capacity": capacity,
    }


def report(
    *,
    version: str,
    runs: dict[str, dict[str, list[dict[str, Any]]]],
    latencies: dict[str, dict[str, list[int]]],
    inprocess: dict[str, dict[str, float]],
    checks: dict[str, Any],
    wall_s: float,
) -> None:
    clients = {kind: summarise(runs[kind], latencies[kind]) for kind in CLIENTS}
    result = {
        "benchmark": "auth",
        "date": now_iso(),
        "machine": machine(),
        "postgresql": version,
        "server": {
            "uvicorn_loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
            "uvicorn_http": "httptools" if importlib.util.find_spec("httptools") else "h11",
            "workers": 1,
            "db_pool": "default settings (10 + 5 overflow)",
            "access_log": False,
            "log_level": "WARNING",
        },
        "load": {
            "clients": {
                "httpx": f"httpx {httpx.__version__} AsyncClient, keep-alive",
                "raw": "HTTP/1.1 over asyncio streams, one keep-alive connection per worker",
            },
            "concurrency": CONCURRENCY,
            "warmup_per_client_and_variant": WARMUP,
            "rounds": ROUNDS,
            "requests_per_client_variant_and_round": PER_ROUND,
            "order": "interleaved: variant order rotated every round, client order alternating",
        },
        "tenant": {"tier": TIER, "limit_overrides": OVERRIDE_LIMITS},
        "requests": {
            "none": "GET /health/live",
            "jwt": "GET /v1/me, Authorization: Bearer <access token>",
            "api_key": "GET /v1/me, X-API-Key",
        },
        "clients": clients,
        "inprocess_ms": inprocess,
        "checks": checks,
        "wall_s": round(wall_s, 1),
    }
    path = write_json("auth.json", result)

    rows = []
    for kind in CLIENTS:
        for name in VARIANTS:
            v = clients[kind]["variants"][name]
            cpu = v["cpu_us_per_request"]
            ratio = clients[kind]["ratios_req_per_s"].get(f"{name}_over_none", 1.0)
            rows.append(
                [
                    kind,
                    name,
                    v["req_per_s"],
                    f"{min(v['req_per_s_by_round']):.0f}-{max(v['req_per_s_by_round']):.0f}",
                    v["latency"]["p50_ms"],
                    v["latency"]["p95_ms"],
                    f"{ratio:.3f}",
                    "/".join(f"{cpu[k]:.0f}" for k in ("client", "server", "postgres", "other")),
                    f"{v['machine_busy']:.0%}",
                ]
            )
    print(
        f"Auth cost - uvicorn ({result['server']['uvicorn_loop']}, "
        f"{result['server']['uvicorn_http']}, 1 worker) on 127.0.0.1, PostgreSQL {version}, "
        f"{os.cpu_count()} cores; {CONCURRENCY} concurrent, {ROUNDS} rounds x {PER_ROUND} "
        f"requests per client and variant (+{WARMUP} warm-up), interleaved"
    )
    print()
    print(
        table(
            [
                "client",
                "variant",
                "req/s",
                "by round",
                "p50 ms",
                "p95 ms",
                "x none",
                "CPU us/req client/server/pg/other",
                "busy",
            ],
            rows,
            left=2,
        )
    )
    print()
    for kind in CLIENTS:
        r, c = clients[kind]["ratios_req_per_s"], clients[kind]["ratios_server_core_capacity"]
        print(
            f"{kind}: req/s jwt/none = {r['jwt_over_none']:.3f}, api_key/none = "
            f"{r['api_key_over_none']:.3f}; by server CPU per request: jwt/none = "
            f"{c['jwt_over_none']:.3f}, api_key/none = {c['api_key_over_none']:.3f}"
        )
    print()
    print(f"The authentication step alone, in-process, idle server ({INPROCESS} calls each)")
    print()
    print(
        table(
            ["step", "p50 ms", "mean ms"],
            [[k, v["p50_ms"], v["mean_ms"]] for k, v in inprocess.items()],
        )
    )
    print()
    print(f"Wall time {wall_s:.1f} s; JSON: {path}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve()
    else:
        asyncio.run(main())
