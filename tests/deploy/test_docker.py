"""deploy/docker: the Compose files against the Compose Specification's schema, the stack they
describe, and the Dockerfile against our rules. Nothing is built or run: no container can be
built or run on these machines."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from deploy.tools import dockerfile_lint
from deploy.tools.render_nginx import PLACEHOLDER, TEMPLATE, NginxValues, render, upstream_servers
from tests.deploy.test_kubernetes import render as render_overlay

DOCKER = Path(__file__).resolve().parents[2] / "deploy" / "docker"
SCHEMA = json.loads((DOCKER / "schema" / "compose-spec.json").read_text())
STACK = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
MONITORING = yaml.safe_load((DOCKER / "docker-compose.monitoring.yml").read_text())
DOCKERFILE = (DOCKER / "Dockerfile").read_text()
API_SERVICES = ["api-1", "api-2", "api-3"]


def compose_errors(document) -> list[str]:
    validator = jsonschema.Draft7Validator(SCHEMA)
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(document)]


@pytest.mark.parametrize("document", [STACK, MONITORING], ids=["stack", "monitoring"])
def test_compose_files_follow_the_specification(document):
    assert compose_errors(document) == []


def test_the_schema_bites():
    broken = json.loads(json.dumps(STACK))
    broken["services"]["worker"]["comand"] = broken["services"]["worker"].pop("command")
    assert compose_errors(broken)


def test_the_stack_has_every_service_of_the_design():
    services = STACK["services"]
    assert {"postgres", "temporal", "redis", "migrate", "worker", "nginx", "prometheus"} <= set(
        services
    )
    assert services["postgres"]["image"].startswith("pgvector/pgvector:")
    for name in API_SERVICES:
        assert services[name]["command"] == ["tenantry", "serve"]
        assert services[name]["healthcheck"]["test"][-1].count("/health/ready") == 1
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    assert services["worker"]["command"] == ["tenantry", "worker", "--health-port", "8000"]
    assert set(MONITORING["services"]) == {"prometheus", "grafana"}
    for document in (STACK, MONITORING):
        for name, service in document["services"].items():
            image = service.get("image", "")
            assert re.search(r":[^:]*\d", image) and not image.endswith(":latest"), name


def test_no_secret_is_written_into_the_compose_files():
    secret = re.compile(r"(SECRET|PASSWORD|TOKEN|API_KEY|_PWD)$")
    for document in (STACK, MONITORING):
        for service in document["services"].values():
            for name, value in (service.get("environment") or {}).items():
                if secret.search(name):
                    assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", str(value)), name
    # The database URL carries a password: interpolated from .env as well.
    url = STACK["services"]["worker"]["environment"]["TENANTRY_DATABASE_URL"]
    assert "${POSTGRES_PASSWORD:?" in url


def test_compose_nginx_renders_the_same_configuration_as_the_template_tool():
    environment = STACK["services"]["nginx"]["environment"]
    template = TEMPLATE.read_text()
    assert {
        k for k in environment if k.startswith("NGINX_") and k != "NGINX_ENVSUBST_OUTPUT_DIR"
    } == (set(PLACEHOLDER.findall(template)))
    values = NginxValues(upstreams=tuple(f"{name}:8000" for name in API_SERVICES))
    assert environment["NGINX_UPSTREAM_SERVERS"] == upstream_servers(
        values.upstreams, max_fails=values.max_fails, fail_timeout_s=values.fail_timeout_s
    )
    read = int(environment["NGINX_READ_TIMEOUT"].rstrip("s"))
    assert int(environment["NGINX_NEXT_UPSTREAM_TIMEOUT"].rstrip("s")) > read
    # What the image's envsubst step writes is a configuration render_nginx would write too.
    substituted = PLACEHOLDER.sub(lambda m: str(environment[m.group(1)]), template)
    same = NginxValues(
        upstreams=values.upstreams,
        pid_file=environment["NGINX_PID_FILE"],
        server_name="${TENANTRY_SERVER_NAME:-_}",
    )
    expected = render(same).replace(
        "# no trusted proxy: $remote_addr is the peer", environment["NGINX_REAL_IP_FROM"]
    )
    assert substituted == expected


def test_prometheus_scrapes_every_replica_directly():
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    targets = {
        t for job in config["scrape_configs"] for c in job["static_configs"] for t in c["targets"]
    }
    assert targets == {f"{name}:8000" for name in [*API_SERVICES, "worker"]}


def test_dockerfile_follows_our_rules():
    assert dockerfile_lint.lint(DOCKERFILE) == []
    final = dockerfile_lint.stages(DOCKERFILE)[-1]
    instructions = dict(final.instructions)
    assert instructions["CMD"] == '["tenantry", "serve"]'
    assert final.image.startswith("python:3.11.")
    assert "/health/live" in instructions["HEALTHCHECK"]
    # The same unprivileged user the Kubernetes pods run as.
    api = next(r for r in render_overlay("phase3") if r["metadata"]["name"] == "tenantry-api")
    uid = api["spec"]["template"]["spec"]["securityContext"]["runAsUser"]
    assert instructions["USER"] == f"{uid}:{uid}"


GOOD = """
FROM python:3.11.14-slim AS builder
RUN pip wheel --wheel-dir /wheels .
FROM python:3.11.14-slim
COPY --from=builder /wheels /wheels
RUN pip install /wheels/*.whl
USER 10001
HEALTHCHECK CMD true
CMD ["tenantry", "serve"]
"""


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (("FROM python:3.11.14-slim\nCOPY", "FROM python:latest\nCOPY"), "not pinned"),
        (("FROM python:3.11.14-slim AS", "FROM python:3.11 AS"), "not pinned"),
        (("USER 10001", "USER root"), "runs as root"),
        (("USER 10001\n", ""), "no USER"),
        (("USER 10001\n", "USER 10001\nRUN true\n"), "RUN follows"),
        (("RUN pip install", "RUN apt-get install -y gcc && pip install"), "installs gcc"),
        (
            (
                "RUN pip install",
                "RUN apt-get install -y --no-install-recommends libpq-dev && pip install",
            ),
            "installs libpq-dev",
        ),
        (("HEALTHCHECK CMD true\n", ""), "no HEALTHCHECK"),
        (("COPY --from=builder /wheels /wheels\n", ""), "does not install the wheel"),
        (("USER 10001", "ENV TENANTRY_JWT_SECRET=abc\nUSER 10001"), "looks like a secret"),
    ],
)
def test_dockerfile_rules_catch_each_mistake(change, complaint):
    assert dockerfile_lint.lint(GOOD) == []
    bad = GOOD.replace(*change)
    assert bad != GOOD
    assert any(complaint in problem for problem in dockerfile_lint.lint(bad)), dockerfile_lint.lint(
        bad
    )
