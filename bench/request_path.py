"""The authenticated request path against a bare handler doing the same lookups.

`GET /v1/me` of Tenantry (with an API key, and with a JWT access token) is compared with a minimal
Starlette + asyncpg app on the same PostgreSQL doing the same lookups: for an API key the tenant,
then the key (digest compared, revocation and expiry checked); for a JWT the token verified, then
the tenant, then the user with whether its session is revoked. The bare app connects as the
database owner (no row-level security, no transaction) and has no middleware, limits, metrics or
logging: it is the floor the platform's path is measured against.

With `--baseline SRC` (the `src` folder of another checkout, e.g. `git worktree add /tmp/base main`)
the same `GET /v1/me` is also served by that code, on the same database, so a change is measured
before and after in one interleaved run instead of two runs on a machine whose load drifts.

Every server is a uvicorn subprocess with the same settings (one worker, no access log), and the
load generator is a minimal keep-alive HTTP/1.1 client with CONCURRENCY connections. After a
warm-up the variants are interleaved in ROUNDS rounds, their order rotated every round. Reported
for each: requests per second, p50/p95/p99 latency, and CPU per request of the server, PostgreSQL
and the client (from /proc), with the machine's load average. Then one more Tenantry server runs
under cProfile (CPU clock) for PROFILED requests of each credential, and where its CPU goes is summarised
(per package, and per step of the path) beside the results.

Client, servers and PostgreSQL share the machine's cores: compare the variants with each other,
not with figures taken elsewhere.

Run from the repository root:

    .venv/bin/python bench/request_path.py                      # this checkout against bare
    .venv/bin/python bench/request_path.py --baseline /tmp/base/src   # ... and against a baseline

Results: printed, bench/results/request_path.json and bench/results/request_path_profile.txt
(`--name` changes the files' name). To profile another checkout, put its `src` first on the path:
`PYTHONPATH=/tmp/base/src .venv/bin/python bench/request_path.py --name request_path_before`.
Needs the `bench` extra (asyncpg): `.venv/bin/pip install -e '.[bench]'`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from common import (
    RESULTS,
    Meter,
    free_port,
    machine,
    now_iso,
    raw_load,
    server_version,
    stop_server,
    summary_ms,
    table,
    temporary_stack,
    wait_until_up,
    write_json,
)

CONCURRENCY = 16
WARMUP = 500  # requests per variant before the first round
ROUNDS = 5
PER_ROUND = 1_000  # requests per variant and round
PROFILED = 1_500  # requests per credential against the profiled server
PASSWORD = "Correct-Horse-42-Battery"
EMAIL = "bench@example.com"
SLUG = "bench"
TIER = "enterprise"
# Raised so the bench measures the path's cost, not the tenant's limits.
OVERRIDE_LIMITS = {"requests_per_minute": 10_000_000, "concurrent_requests": 1_000}
CREDENTIALS = ("api_key", "jwt")

# The bare app's lookups, as the database owner.
BARE_TENANT = "SELECT slug, tier, status FROM tenants WHERE id = $1"
BARE_KEY = (
    "SELECT id, name, key_hash, scopes, revoked_at, expires_at FROM api_keys "
    "WHERE tenant_id = $1 AND lookup = $2"
)
BARE_USER = (
    "SELECT u.id, u.email, u.role, u.status, EXISTS (SELECT 1 FROM refresh_tokens r "
    "WHERE r.tenant_id = u.tenant_id AND r.family_id = $3 AND r.revoked_at IS NOT NULL) AS revoked "
    "FROM users u WHERE u.tenant_id = $1 AND u.id = $2"
)


def serve_bare() -> None:
    """The bare handler: Starlette, an asyncpg pool, the same lookups, nothing else."""
    from contextlib import asynccontextmanager
    from datetime import UTC, datetime

    import asyncpg
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from tenantry.identity import access_tokens
    from tenantry.identity.permissions import permissions_of
    from tenantry.identity.tokens import API_KEY_PREFIX, digest, parse_tenant_secret, same_digest

    signing_key = os.environ["BENCH_JWT_KEY"]
    pool: Any = None

    @asynccontextmanager
    async def lifespan(_app):
        nonlocal pool
        pool = await asyncpg.create_pool(os.environ["BENCH_BARE_DSN"], min_size=10, max_size=15)
        yield
        await pool.close()

    def answer(kind, id_, name, tenant, role, scopes) -> JSONResponse:
        granted = permissions_of(role=role, scopes=frozenset(scopes))
        return JSONResponse(
            {
                "kind": kind,
                "id": str(id_),
                "name": name,
                "tenant": tenant["slug"],
                "tier": tenant["tier"],
                "role": role,
                "scopes": sorted(scopes),
                "permissions": sorted(str(p) for p in granted),
            }
        )

    async def me(request):
        unauthorized = JSONResponse({"detail": "unauthorized"}, status_code=401)
        token = request.headers.get("x-api-key") or request.headers.get(
            "authorization", ""
        ).removeprefix("Bearer ")
        if token.startswith(API_KEY_PREFIX):
            parsed = parse_tenant_secret(API_KEY_PREFIX, token)
            if parsed is None:
                return unauthorized
            async with pool.acquire() as conn:
                tenant = await conn.fetchrow(BARE_TENANT, parsed.tenant_id)
                key = await conn.fetchrow(BARE_KEY, parsed.tenant_id, parsed.lookup)
            now = datetime.now(UTC)
            if (
                tenant is None
                or tenant["status"] != "active"
                or key is None
                or not same_digest(key["key_hash"], digest(token))
                or key["revoked_at"] is not None
                or (key["expires_at"] is not None and key["expires_at"] <= now)
            ):
                return unauthorized
            return answer("api_key", key["id"], key["name"], tenant, None, key["scopes"])
        claims = access_tokens.decode(signing_key, token)
        if claims is None or claims.tenant_id is None:
            return unauthorized
        async with pool.acquire() as conn:
            tenant = await conn.fetchrow(BARE_TENANT, claims.tenant_id)
            user = await conn.fetchrow(
                BARE_USER, claims.tenant_id, claims.subject_id, claims.session_id
            )
        if tenant is None or tenant["status"] != "active" or user is None or user["revoked"]:
            return unauthorized
        if user["status"] != "active":
            return JSONResponse({"detail": "disabled"}, status_code=403)
        return answer("user", user["id"], user["email"], tenant, user["role"], ())

    async def live(_request):
        return JSONResponse({"status": "ok"})

    app = Starlette(routes=[Route("/v1/me", me), Route("/health/live", live)], lifespan=lifespan)
    uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=int(os.environ["TENANTRY_PORT"]),
            log_config=None,
            log_level="warning",
            access_log=False,
        )
    ).run()


def serve_profiled() -> None:
    """Tenantry's app under cProfile with a CPU clock (a wall clock on a shared machine charges
    other processes' time to whatever frame was running); the stats are written when it stops."""
    import cProfile

    from common import serve

    # uvicorn re-raises the SIGTERM it stopped on once it is done: let that return here.
    signal.signal(signal.SIGTERM, lambda *_: None)
    profiler = cProfile.Profile(time.process_time)
    # Started by the bench once the server is warm, so start-up (imports, the embedder) is left out.
    signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())
    try:
        serve()
    finally:
        profiler.disable()
        profiler.dump_stats(os.environ["BENCH_PROFILE"])


def start(mode: str, env: dict[str, str], log: Path, *, src: str | None = None):
    import subprocess

    env = dict(env)
    if src:
        # Another checkout's code, ahead of this one's editable install.
        env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, __file__, mode], env=env, stdout=out, stderr=out)


async def main(baseline: str | None, name: str) -> None:
    from tenantry.db.urls import libpq_dsn
    from tenantry.identity import users
    from tenantry.identity.access_tokens import signing_key
    from tenantry.identity.schemas import UserCreate
    from tenantry.limits import service as limits
    from tenantry.settings import Settings
    from tenantry.tenants import service as tenants
    from tenantry.tenants.schemas import TenantCreate
    from tenantry.tenants.tiers import LimitsPatch

    started = time.perf_counter()
    load_before = os.getloadavg()
    with temporary_stack("request-path") as stack:
        version = server_version(stack)
        home = stack.settings.home
        settings = Settings(home=home, demo_tenants=False, log_level="WARNING")
        db = stack.database()
        async with db.control() as session:
            tenant = await tenants.create(
                session,
                data=TenantCreate(slug=SLUG, name="Bench", tier=TIER),
                actor="bench",
                settings=settings,
            )
        async with db.control() as session:
            await limits.set_overrides(
                session, slug=SLUG, patch=LimitsPatch(**OVERRIDE_LIMITS), actor="bench"
            )
        async with db.tenant(tenant.id) as session:
            await users.create(
                session,
                tenant_id=tenant.id,
                data=UserCreate(email=EMAIL, password=PASSWORD, role="admin"),
                actor="bench",
                actor_role=None,
            )
        await db.dispose()

        base_env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")}
        base_env.update(
            TENANTRY_HOME=str(home),
            TENANTRY_DATABASE_URL=stack.admin_url,
            TENANTRY_LOG_LEVEL="WARNING",
            TENANTRY_DEMO_TENANTS="false",
            # Shedding on event-loop lag reacts to whatever else loads a shared machine; this
            # measures the path's cost, so it is off (in-flight shedding stays).
            TENANTRY_LOOP_LAG_THRESHOLD_MS="60000",
            BENCH_JWT_KEY=signing_key(settings),
            BENCH_BARE_DSN=libpq_dsn(stack.admin_url),
        )
        servers: dict[str, tuple[Any, int]] = {}
        plan = [("bare", "--serve-bare", None), ("tenantry", "--serve", None)]
        if baseline:
            plan.append(("baseline", "--serve", baseline))
        postmaster = int((home / "pgdata" / "postmaster.pid").read_text().split()[0])
        try:
            for server, mode, src in plan:
                port = free_port()
                log = home / f"{server}.log"
                proc = start(mode, {**base_env, "TENANTRY_PORT": str(port)}, log, src=src)
                servers[server] = (proc, port)
                await wait_until_up(f"http://127.0.0.1:{port}", proc, log)
            credentials = await _credentials(servers["tenantry"][1])
            await _sanity(servers, credentials)
            runs, latencies = await _interleaved(servers, credentials, postmaster)
        finally:
            for proc, _ in servers.values():
                stop_server(proc)
        profile = await _profile(base_env, home, credentials, name)
    load_after = os.getloadavg()
    report(
        version=version,
        baseline=baseline,
        runs=runs,
        latencies=latencies,
        profile=profile,
        name=name,
        load=(load_before, load_after),
        wall_s=time.perf_counter() - started,
    )


async def _credentials(port: int) -> dict[str, dict[str, str]]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
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
        return {
            "api_key": {"X-API-Key": answer.json()["key"]},
            "jwt": {"Authorization": f"Bearer {token}"},
        }


async def _sanity(servers, credentials) -> None:
    """Every server answers both credentials with the same subject, and refuses no credential."""
    async with httpx.AsyncClient() as client:
        seen = {}
        for name, (_, port) in servers.items():
            for cred, headers in credentials.items():
                answer = await client.get(f"http://127.0.0.1:{port}/v1/me", headers=headers)
                if answer.status_code != 200:
                    raise SystemExit(f"{name} {cred}: {answer.status_code} {answer.text}")
                body = answer.json()
                seen.setdefault(cred, set()).add((body["kind"], body["id"], body["tenant"]))
            refused = await client.get(f"http://127.0.0.1:{port}/v1/me")
            if refused.status_code != 401:
                raise SystemExit(f"{name}: no credential answered {refused.status_code}")
        if any(len(subjects) != 1 for subjects in seen.values()):
            raise SystemExit(f"the servers disagree on who is calling: {seen}")


async def _interleaved(servers, credentials, postmaster):
    variants = [(server, cred) for server in servers for cred in CREDENTIALS]
    for server, cred in variants:
        _, _, bad = await raw_load(
            servers[server][1], "/v1/me", credentials[cred], WARMUP, CONCURRENCY
        )
        if bad:
            raise SystemExit(f"{server} {cred}: {bad} non-200 answers in warm-up")
    runs: dict[str, list[dict[str, float]]] = {f"{s}/{c}": [] for s, c in variants}
    latencies: dict[str, list[int]] = {f"{s}/{c}": [] for s, c in variants}
    for r in range(ROUNDS):
        shift = r % len(variants)
        for server, cred in variants[shift:] + variants[:shift]:
            proc, port = servers[server]
            meter = Meter(proc.pid, postmaster)
            before = meter.snapshot()
            wall, lat, bad = await raw_load(
                port, "/v1/me", credentials[cred], PER_ROUND, CONCURRENCY
            )
            cpu = Meter.delta(before, meter.snapshot())
            if bad:
                raise SystemExit(f"{server} {cred}: {bad} non-200 answers in round {r + 1}")
            runs[f"{server}/{cred}"].append({"round": r + 1, "wall_s": wall, **cpu})
            latencies[f"{server}/{cred}"] += lat
    return runs, latencies


async def _profile(base_env, home: Path, credentials, name: str) -> dict[str, Any]:
    port = free_port()
    raw = home / "profile.pstats"
    env = {**base_env, "TENANTRY_PORT": str(port), "BENCH_PROFILE": str(raw)}
    log = home / "profiled.log"
    proc = start("--serve-profiled", env, log)
    try:
        await wait_until_up(f"http://127.0.0.1:{port}", proc, log)
        for headers in credentials.values():
            await raw_load(port, "/v1/me", headers, WARMUP, CONCURRENCY)
        proc.send_signal(signal.SIGUSR1)
        for headers in credentials.values():
            await raw_load(port, "/v1/me", headers, PROFILED, CONCURRENCY)
    finally:
        stop_server(proc)
    return summarise_profile(raw, PROFILED * len(credentials), name)


# The cumulative CPU of each step of the path (a step's figure includes the steps it calls).
STEPS = {
    "the tenant middleware and all below it": ("tenantry/tenancy/middleware.py", "__call__"),
    "authentication": ("tenantry/identity/authn.py", "__call__"),
    "  its database read (Database.run_once)": ("tenantry/db/session.py", "run_once"),
    "  credential parsing, JWT verification": ("tenantry/identity/credentials.py", "credential_of"),
    "early refusal (rate peek)": ("tenantry/limits/early.py", "__call__"),
    "rate limit hit": ("tenantry/limits/rates.py", "hit"),
    "FastAPI dependencies": ("fastapi/dependencies/utils.py", "solve_dependencies"),
    "FastAPI response serialisation": ("fastapi/routing.py", "serialize_response"),
    "metrics and access log": ("tenantry/tenancy/middleware.py", "_observe"),
}


def _package(path: str) -> str:
    if "/tenantry/" in path and "site-packages" not in path:
        return "tenantry." + path.split("/tenantry/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
    if path.startswith("~") or path.startswith("<"):
        return "builtins"
    where = Path(path)
    return "python:" + (where.parent.name if where.stem == "__init__" else where.stem)


def summarise_profile(raw: Path, requests: int, name: str) -> dict[str, Any]:
    """CPU per request (under the profiler, which slows everything alike), by package and step."""
    import io
    import pstats

    stats = pstats.Stats(str(raw))
    by_package: dict[str, float] = {}
    steps = dict.fromkeys(STEPS, 0.0)
    for (path, _line, function), (_cc, _nc, tottime, cumtime, _callers) in stats.stats.items():
        package = _package(path)
        by_package[package] = by_package.get(package, 0.0) + tottime
        for step, (suffix, wanted) in STEPS.items():
            if function == wanted and path.endswith(suffix):
                steps[step] += cumtime
    total = sum(by_package.values())
    out = io.StringIO()
    pstats.Stats(str(raw), stream=out).sort_stats("cumulative").print_stats(60)
    pstats.Stats(str(raw), stream=out).sort_stats("tottime").print_stats(40)
    tree = RESULTS / f"{name}_profile.txt"
    tree.write_text(out.getvalue())
    top = sorted(by_package.items(), key=lambda kv: -kv[1])
    return {
        "profiler": "cProfile, CPU clock (time.process_time), whole server process",
        "requests": requests,
        "cpu_ms_per_request_under_profiler": round(total / requests * 1000, 3),
        "self_time_share_by_package": {k: round(v / total, 3) for k, v in top[:15]},
        "steps_ms_per_request": {k: round(v / requests * 1000, 3) for k, v in steps.items()},
        "stats": f"bench/results/{tree.name}",
    }


def report(*, version, baseline, runs, latencies, profile, name, load, wall_s) -> None:
    variants: dict[str, Any] = {}
    for variant, rounds in runs.items():
        n = PER_ROUND * len(rounds)
        wall = sum(r["wall_s"] for r in rounds)
        cpu = {
            part: round(sum(r[f"{part}_cpu_s"] for r in rounds) / n * 1e6, 1)
            for part in ("client", "server", "postgres", "other")
        }
        variants[variant] = {
            "requests": n,
            "req_per_s": round(n / wall, 1),
            "req_per_s_by_round": [round(PER_ROUND / r["wall_s"], 1) for r in rounds],
            "latency": summary_ms(latencies[variant]),
            "cpu_us_per_request": cpu,
            "machine_busy": round(sum(r["machine_busy"] for r in rounds) / len(rounds), 3),
        }
    ratios = {}
    for cred in CREDENTIALS:
        bare = variants[f"bare/{cred}"]
        for server in ("tenantry", "baseline"):
            v = variants.get(f"{server}/{cred}")
            if v is None:
                continue
            ratios[f"{server}_over_bare/{cred}"] = {
                "req_per_s": round(v["req_per_s"] / bare["req_per_s"], 3),
                "server_cpu": round(
                    v["cpu_us_per_request"]["server"] / bare["cpu_us_per_request"]["server"], 2
                ),
            }
    result = {
        "benchmark": "request_path",
        "date": now_iso(),
        "machine": machine(),
        "load_average_before_after": [list(load[0]), list(load[1])],
        "postgresql": version,
        "servers": {
            "tenantry": "this checkout, uvicorn, 1 worker, no access log, log level WARNING",
            "baseline": baseline and f"the code under {baseline}, same settings",
            "bare": "Starlette + asyncpg pool (10-15) as the database owner, same lookups",
        },
        "load": {
            "client": "HTTP/1.1 over asyncio streams, one keep-alive connection per worker",
            "concurrency": CONCURRENCY,
            "warmup_per_variant": WARMUP,
            "rounds": ROUNDS,
            "requests_per_variant_and_round": PER_ROUND,
            "order": "interleaved, variant order rotated every round",
        },
        "tenant": {"tier": TIER, "limit_overrides": OVERRIDE_LIMITS},
        "variants": variants,
        "ratios": ratios,
        "profile": profile,
        "wall_s": round(wall_s, 1),
    }
    path = write_json(f"{name}.json", result)
    rows = [
        [
            variant,
            v["req_per_s"],
            f"{min(v['req_per_s_by_round']):.0f}-{max(v['req_per_s_by_round']):.0f}",
            v["latency"]["p50_ms"],
            v["latency"]["p95_ms"],
            "/".join(f"{v['cpu_us_per_request'][k]:.0f}" for k in ("server", "postgres", "client")),
            f"{v['machine_busy']:.0%}",
        ]
        for variant, v in variants.items()
    ]
    print(
        f"GET /v1/me - PostgreSQL {version}, {os.cpu_count()} cores, {CONCURRENCY} concurrent, "
        f"{ROUNDS} interleaved rounds x {PER_ROUND}; load average {load[0][0]:.2f} -> "
        f"{load[1][0]:.2f}"
    )
    print()
    print(
        table(
            ["variant", "req/s", "by round", "p50 ms", "p95 ms", "CPU us/req srv/pg/cli", "busy"],
            rows,
        )
    )
    print()
    for pair, r in ratios.items():
        print(f"{pair}: {r['req_per_s']:.3f} of the rate, {r['server_cpu']:.2f}x the server CPU")
    print()
    print(f"Profile ({profile['cpu_ms_per_request_under_profiler']} ms CPU per request):")
    for step, ms in profile["steps_ms_per_request"].items():
        print(f"  {step:34} {ms:.3f} ms")
    for package, share in profile["self_time_share_by_package"].items():
        print(f"  {package:34} {share:.1%} of self time")
    print()
    print(f"Wall time {wall_s:.1f} s; JSON: {path}")


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        from common import serve

        serve()
    elif sys.argv[1:] == ["--serve-bare"]:
        serve_bare()
    elif sys.argv[1:] == ["--serve-profiled"]:
        serve_profiled()
    else:
        parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
        parser.add_argument("--baseline", help="the src folder of another checkout to compare")
        parser.add_argument("--name", default="request_path", help="of the result files")
        args = parser.parse_args()
        asyncio.run(main(args.baseline, args.name))
