"""The hash chain: pure functions, so the writer and the verifier cannot disagree."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64


def event_digest(
    *,
    prev_hash: str,
    tenant_id: str,
    seq: int,
    occurred_at: datetime,
    actor: str,
    action: str,
    target: str,
    request_id: str | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> str:
    payload = {
        "tenant_id": tenant_id,
        "seq": seq,
        "occurred_at": occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "target": target,
        "request_id": request_id,
        "before": before,
        "after": after,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()
