"""deploy/kubernetes: every overlay renders, passes Kubernetes' own schemas strictly (and KEDA's
for its resources), keeps its pods hardened, and its NetworkPolicies open only the intended paths."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from deploy.tools import dedicated_worker
from deploy.tools.kustomize import KustomizeError, build, merge
from tenantry.settings import Settings
from tenantry.tenants.namespaces import dedicated_task_queue
from tests.deploy.netpol import Address, Pod, Policies

ROOT = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
PHASES = ["phase1", "phase2", "phase3"]
KUBERNETES_VERSION = "1.37"
KEDA_SCHEMA = json.loads((ROOT / "schemas" / "keda.sh_v1alpha1_scaledobject.json").read_text())
WORKLOADS = {"Deployment", "StatefulSet", "Job"}
SECRET_WORDS = ("SECRET", "PASSWORD", "TOKEN", "API_KEY", "DATABASE_URL")


def render(phase: str) -> list[dict[str, Any]]:
    return build(ROOT / "overlays" / phase)


def by_id(resources: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["kind"], r["metadata"]["name"]): r for r in resources}


def validate(resource: dict[str, Any]) -> None:
    """Kubernetes' schema for built-in kinds, the vendored KEDA CRD schema for ScaledObjects;
    a kind that neither knows fails, so nothing is left unchecked."""
    if resource["apiVersion"] == "keda.sh/v1alpha1":
        jsonschema.validate(resource, KEDA_SCHEMA, cls=jsonschema.Draft202012Validator)
    else:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def pod_specs(resources):
    for r in resources:
        if r["kind"] in WORKLOADS:
            yield r, r["spec"]["template"]["spec"]


@pytest.mark.parametrize("phase", PHASES)
def test_every_overlay_renders_and_validates_strictly(phase):
    resources = render(phase)
    assert len(resources) > 20
    for resource in resources:
        assert resource["kind"] == "Namespace" or resource["metadata"]["namespace"] == "tenantry"
        validate(resource)


def test_the_validators_bite():
    resources = by_id(render("phase3"))
    deployment = copy.deepcopy(resources["Deployment", "tenantry-api"])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)
    scaled = copy.deepcopy(resources["ScaledObject", "tenantry-api"])
    scaled["spec"]["advanced"]["scalingModifier"] = scaled["spec"]["advanced"].pop(
        "scalingModifiers"
    )
    with pytest.raises(jsonschema.ValidationError):
        validate(scaled)
    scaled = copy.deepcopy(resources["ScaledObject", "tenantry-api"])
    scaled["spec"]["advanced"]["scalingModifiers"]["metricType"] = "Utilization"
    with pytest.raises(jsonschema.ValidationError):
        validate(scaled)


def test_phases_differ_as_the_scaling_guide_says():
    one, two, three = (by_id(render(p)) for p in PHASES)
    # Phase 1: one server, everything in it, nothing to scale.
    assert ("StatefulSet", "postgres") in one
    assert not any(kind in {"HorizontalPodAutoscaler", "ScaledObject"} for kind, _ in one)
    assert one["Deployment", "tenantry-api"]["spec"]["replicas"] == 1
    # Phase 2: the database apart (a Service without selector and its endpoints), the plain HPA.
    assert ("StatefulSet", "postgres") not in two
    assert "selector" not in two["Service", "postgres"]["spec"]
    assert ("EndpointSlice", "postgres-external") in two
    assert ("HorizontalPodAutoscaler", "tenantry-api") in two
    # Phase 3: KEDA owns the API's scaling (no second HPA), workers on backlog, a read replica.
    assert ("HorizontalPodAutoscaler", "tenantry-api") not in three
    assert {("ScaledObject", "tenantry-api"), ("ScaledObject", "tenantry-worker")} <= set(three)
    assert ("Service", "postgres-replica") in three
    assert ("Deployment", "temporal") not in three
    assert three["Deployment", "tenantry-api"]["spec"]["replicas"] == 3
    for resources in (one, two, three):
        assert {
            ("PodDisruptionBudget", "tenantry-api"),
            ("PodDisruptionBudget", "tenantry-worker"),
        } <= set(resources)


def test_worker_scaler_watches_the_queue_the_workers_poll():
    resources = by_id(render("phase3"))
    (trigger,) = resources["ScaledObject", "tenantry-worker"]["spec"]["triggers"]
    config = resources["ConfigMap", "tenantry-config"]["data"]
    assert trigger["type"] == "temporal"
    assert trigger["metadata"]["taskQueue"] == config["TENANTRY_POOL_TASK_QUEUE"]
    assert trigger["metadata"]["namespace"] == config["TENANTRY_TEMPORAL_NAMESPACE"]
    assert trigger["metadata"]["endpoint"].split(".")[0] == "temporal-frontend"
    assert config["TENANTRY_TEMPORAL_ADDRESS"] == "temporal-frontend:7233"


@pytest.mark.parametrize("phase", PHASES)
def test_pods_are_hardened_and_drain(phase):
    resources = render(phase)
    for resource, pod in pod_specs(resources):
        name = resource["metadata"]["name"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod.get("automountServiceAccountToken") is False, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert container["resources"]["requests"]["cpu"], name
            assert container["resources"]["limits"]["memory"], name
            if resource["kind"] != "Job":
                assert "readinessProbe" in container and "livenessProbe" in container, name

    api = by_id(resources)["Deployment", "tenantry-api"]["spec"]["template"]["spec"]
    (container,) = api["containers"]
    assert container["command"] == ["tenantry", "serve"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    # The grace period covers the endpoint drain and the API's own drain of in-flight requests.
    assert api["terminationGracePeriodSeconds"] >= pre_stop + 30
    worker = by_id(resources)["Deployment", "tenantry-worker"]["spec"]["template"]["spec"]
    assert worker["containers"][0]["command"] == ["tenantry", "worker", "--health-port", "8000"]


@pytest.mark.parametrize("phase", PHASES)
def test_configuration_names_real_settings_and_no_secret(phase):
    settings = {f"TENANTRY_{name.upper()}" for name in Settings.model_fields}
    resources = render(phase)
    config = by_id(resources)["ConfigMap", "tenantry-config"]["data"]
    unknown = {k for k in config if k.startswith("TENANTRY_")} - settings
    assert not unknown, f"not settings: {unknown}"
    assert not [k for k in config if any(word in k for word in SECRET_WORDS)]
    for _, pod in pod_specs(resources):
        for container in pod["containers"]:
            for env in container.get("env", []):
                if any(word in env["name"] for word in SECRET_WORDS):
                    assert "valueFrom" in env, env["name"]
            refs = [e.get("secretRef", {}).get("name") for e in container.get("envFrom", [])]
            assert refs.count("tenantry-secrets") <= 1


def test_secrets_example_names_real_settings():
    settings = {f"TENANTRY_{name.upper()}" for name in Settings.model_fields}
    lines = (ROOT / "secrets.example.env").read_text().splitlines()
    names = {
        line.lstrip("# ").split("=")[0] for line in lines if "=" in line and "TENANTRY_" in line
    }
    assert names and names <= settings


def test_dedicated_worker_template_for_a_silo_tenant():
    resources = list(yaml.safe_load_all(dedicated_worker.render("chogar")))
    for resource in resources:
        validate(resource)
    deployment, scaled = resources
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == [
        "tenantry",
        "worker",
        "--tenant",
        "chogar",
        "--health-port",
        "8000",
    ]
    assert scaled["spec"]["triggers"][0]["metadata"]["taskQueue"] == dedicated_task_queue("chogar")
    assert scaled["spec"]["triggers"][0]["metadata"]["namespace"] == "default"
    assert container["env"] == [{"name": "TENANTRY_WORKER_OWN_NAMESPACE", "value": "false"}]
    # With its own namespace, the worker polls there and the scaler watches it there.
    own_deployment, own_scaled = yaml.safe_load_all(
        dedicated_worker.render("chogar", own_namespace=True)
    )
    own_container = own_deployment["spec"]["template"]["spec"]["containers"][0]
    assert own_container["env"] == [{"name": "TENANTRY_WORKER_OWN_NAMESPACE", "value": "true"}]
    assert own_scaled["spec"]["triggers"][0]["metadata"]["namespace"] == "tenant-chogar"
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    # Worker labels: the worker NetworkPolicies and disruption budget cover it too.
    policies = Policies.of(render("phase3"))
    assert policies.allows(Pod(labels), Address("192.0.2.10"), 5432)
    assert not policies.allows(Pod({"app": "debug"}), Address("192.0.2.10"), 5432)
    with pytest.raises(ValueError):
        dedicated_worker.render("Bad_Slug")


INGRESS = Pod({"app.kubernetes.io/name": "ingress-nginx"}, namespace="ingress-nginx")
PROMETHEUS = Pod({"app.kubernetes.io/name": "prometheus"}, namespace="monitoring")
OTHER_MONITORING = Pod({"app": "grafana"}, namespace="monitoring")
KEDA = Pod({"app": "keda-operator"}, namespace="keda")
STRANGER = Pod({"app": "debug"})
INTERNET = Address("93.184.216.34")
PRIVATE = Address("10.1.2.3")
DNS = Pod({"k8s-app": "kube-dns"}, namespace="kube-system")


def component(name: str) -> Pod:
    return Pod({"app.kubernetes.io/name": "tenantry", "app.kubernetes.io/component": name})


API, WORKER, MIGRATE = component("api"), component("worker"), component("migrate")


def data_services(phase: str) -> dict[str, Pod | Address]:
    external_db = phase != "phase1"
    external_temporal = phase == "phase3"
    return {
        "postgres": Address("192.0.2.10") if external_db else component("postgres"),
        "temporal": Address("192.0.2.20") if external_temporal else component("temporal"),
        "redis": component("redis"),
    }


PORTS = {"postgres": 5432, "temporal": 7233, "redis": 6379}


@pytest.mark.parametrize("phase", PHASES)
def test_network_policies_open_only_the_platform_paths(phase):
    policies = Policies.of(render(phase))
    services = data_services(phase)

    assert policies.allows(INGRESS, API, 8000)
    assert not policies.allows(INGRESS, WORKER, 8000)
    assert not policies.allows(STRANGER, API, 8000)
    assert not policies.allows(OTHER_MONITORING, API, 8000)
    assert policies.allows(PROMETHEUS, API, 8000)
    assert policies.allows(PROMETHEUS, WORKER, 8000)
    assert not policies.allows(API, WORKER, 8000)

    for name, service in services.items():
        port = PORTS[name]
        assert policies.allows(API, service, port), name
        assert policies.allows(WORKER, service, port), name
        assert not policies.allows(STRANGER, service, port), name
        if isinstance(service, Pod):
            # (An address outside the cluster is closed to other namespaces by its own firewall:
            # these policies govern this namespace's pods only.)
            assert not policies.allows(INGRESS, service, port), name
            assert not policies.allows(PROMETHEUS, service, port), name
        assert not policies.allows(API, service, port + 1), name
    assert policies.allows(MIGRATE, services["postgres"], 5432)
    assert not policies.allows(component("redis"), services["postgres"], 5432)
    assert not policies.allows(component("redis"), services["temporal"], 7233)
    assert not policies.allows(MIGRATE, services["redis"], 6379)

    # Webhooks leave from workers to public addresses only; the API reaches providers on 443.
    assert policies.allows(WORKER, INTERNET, 443)
    assert not policies.allows(WORKER, PRIVATE, 443)
    assert not policies.allows(WORKER, INTERNET, 5432)
    assert policies.allows(API, INTERNET, 443)
    assert not policies.allows(API, INTERNET, 80)
    assert not policies.allows(STRANGER, INTERNET, 443)
    for pod in (API, WORKER, STRANGER):
        assert policies.allows(pod, DNS, 53, "UDP")

    if phase != "phase3":
        # Temporal in the cluster: it stores in PostgreSQL, and KEDA reads its backlog.
        assert policies.allows(component("temporal"), services["postgres"], 5432)
        assert policies.allows(KEDA, services["temporal"], 7233)
        assert not policies.allows(KEDA, API, 8000)


def test_renderer_merges_like_kustomize_and_refuses_what_it_does_not_know(tmp_path):
    base = {
        "spec": {"containers": [{"name": "a", "image": "x", "env": [{"name": "A", "value": "1"}]}]}
    }
    patch = {"spec": {"containers": [{"name": "a", "env": [{"name": "B", "value": "2"}]}]}}
    merged = merge(base, patch)
    assert merged["spec"]["containers"] == [
        {
            "name": "a",
            "image": "x",
            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
        }
    ]
    (tmp_path / "kustomization.yaml").write_text("resources: []\nconfigMapGenerator: []\n")
    with pytest.raises(KustomizeError, match="configMapGenerator"):
        build(tmp_path)
