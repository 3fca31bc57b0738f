"""Pure functions over configuration documents: JSON Merge Patch (RFC 7396), layering, sources
and diffs. A document is a partial tenant configuration; `None` inside a patch removes a key."""

from __future__ import annotations

import copy
from typing import Any

Doc = dict[str, Any]


def merge_patch(target: Doc, patch: Doc) -> Doc:
    """RFC 7396: objects merge recursively, null deletes, anything else replaces."""
    result = copy.deepcopy(target)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = merge_patch(
                result.get(key) if isinstance(result.get(key), dict) else {}, value
            )
            if merged:
                result[key] = merged
            else:
                result.pop(key, None)
        else:
            result[key] = copy.deepcopy(value)
    return result


def overlay(*docs: Doc) -> Doc:
    """Later documents win, key by key (none of them holds nulls)."""
    result: Doc = {}
    for doc in docs:
        result = merge_patch(result, doc)
    return result


def flatten(doc: Doc, prefix: str = "") -> dict[str, Any]:
    leaves: dict[str, Any] = {}
    for key, value in doc.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            leaves.update(flatten(value, f"{path}."))
        else:
            leaves[path] = value
    return leaves


def sources(effective: Doc, tier_doc: Doc, tenant_doc: Doc) -> dict[str, str]:
    """Where each effective value came from: `tenant`, `tier` or `platform`."""
    tenant, tier = flatten(tenant_doc), flatten(tier_doc)
    return {
        path: "tenant" if path in tenant else "tier" if path in tier else "platform"
        for path in flatten(effective)
    }


def diff(before: Doc, after: Doc) -> dict[str, dict[str, Any]]:
    old, new = flatten(before), flatten(after)
    return {
        path: {"from": old.get(path), "to": new.get(path)}
        for path in sorted(old.keys() | new.keys())
        if old.get(path) != new.get(path)
    }
