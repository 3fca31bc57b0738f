"""Render a kustomization without the kustomize binary: the subset deploy/kubernetes uses.

    python -m deploy.tools.kustomize deploy/kubernetes/overlays/phase3 > phase3.yaml

Supported, with kustomize's meaning: `resources` (files and folders holding a kustomization.yaml),
`namespace`, `images` (newName/newTag), `replicas`, and `patches` given by `path` or inline `patch`
as strategic-merge patches (maps merge; the lists below merge by their key; a `$patch: delete`
document removes the resource). Anything else in a kustomization is refused, so the files cannot
drift into features this renderer would silently ignore; `kubectl kustomize` renders the same
folders the same way.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "images", "replicas", "patches"}
# Strategic merge keys of the Kubernetes lists our patches touch (from the API's patchMergeKey).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
}
# The kinds kustomize's `replicas` field sets (by name); others with the same name are left alone.
SCALABLE = {"Deployment", "StatefulSet", "ReplicaSet", "ReplicationController"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}
Resource = dict[str, Any]


class KustomizeError(ValueError):
    pass


def resource_id(resource: Resource) -> tuple[str, str]:
    return resource["kind"], resource["metadata"]["name"]


def merge(base: Any, patch: Any, key: str | None = None) -> Any:
    """Strategic merge of `patch` into `base` (both plain YAML values)."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for name, value in patch.items():
            if value is None:
                out.pop(name, None)
            elif name in out:
                out[name] = merge(out[name], value, name)
            else:
                out[name] = copy.deepcopy(value)
        return out
    if isinstance(base, list) and isinstance(patch, list) and key in MERGE_KEYS:
        merge_key = MERGE_KEYS[key]
        out = [copy.deepcopy(item) for item in base]
        for item in patch:
            match = next(
                (i for i, old in enumerate(out) if old[merge_key] == item[merge_key]), None
            )
            if match is None:
                out.append(copy.deepcopy(item))
            else:
                out[match] = merge(out[match], item)
        return out
    return copy.deepcopy(patch)


def _documents(path: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _apply_patch(resources: list[Resource], patch: Resource, origin: str) -> list[Resource]:
    target = resource_id(patch)
    index = next((i for i, r in enumerate(resources) if resource_id(r) == target), None)
    if index is None:
        raise KustomizeError(f"{origin}: patch for {target} matches no resource")
    if patch.get("$patch") == "delete":
        return resources[:index] + resources[index + 1 :]
    resources = list(resources)
    resources[index] = merge(resources[index], patch)
    return resources


def _set_image(container: dict[str, Any], images: list[dict[str, Any]]) -> None:
    name, _, tag = container["image"].partition(":")
    for image in images:
        if image["name"] == name:
            new_name = image.get("newName", name)
            new_tag = image.get("newTag", tag)
            container["image"] = f"{new_name}:{new_tag}" if new_tag else new_name


def _pod_spec(resource: Resource) -> dict[str, Any] | None:
    spec = resource.get("spec", {})
    if resource["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
        return spec["template"]["spec"]
    return None


def build(folder: Path) -> list[Resource]:
    folder = folder.resolve()
    path = folder / "kustomization.yaml"
    if not path.exists():
        raise KustomizeError(f"{folder}: no kustomization.yaml")
    kustomization = yaml.safe_load(path.read_text())
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        raise KustomizeError(f"{path}: not supported here: {', '.join(sorted(unknown))}")

    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        target = folder / entry
        loaded = build(target) if target.is_dir() else _documents(target)
        for resource in loaded:
            if any(resource_id(r) == resource_id(resource) for r in resources):
                raise KustomizeError(f"{path}: {resource_id(resource)} is defined twice")
            resources.append(resource)

    for entry in kustomization.get("patches", []):
        if "path" in entry:
            documents, origin = _documents(folder / entry["path"]), entry["path"]
        else:
            documents, origin = [yaml.safe_load(entry["patch"])], "inline patch"
        for patch in documents:
            resources = _apply_patch(resources, patch, f"{path}: {origin}")

    for entry in kustomization.get("replicas", []):
        matched = [
            r for r in resources if r["kind"] in SCALABLE and r["metadata"]["name"] == entry["name"]
        ]
        if not matched:
            raise KustomizeError(f"{path}: replicas for {entry['name']} match no resource")
        for resource in matched:
            resource["spec"]["replicas"] = entry["count"]

    images = kustomization.get("images", [])
    namespace = kustomization.get("namespace")
    for resource in resources:
        pod = _pod_spec(resource)
        if pod is not None and images:
            for container in pod.get("containers", []) + pod.get("initContainers", []):
                _set_image(container, images)
        if namespace and resource["kind"] not in CLUSTER_SCOPED:
            resource["metadata"]["namespace"] = namespace
    return resources


def dump(resources: list[Resource]) -> str:
    return yaml.safe_dump_all(resources, sort_keys=False)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    sys.stdout.write(dump(build(Path(args[0]))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
