"""Render deploy/kubernetes/templates/dedicated-worker.yaml for one silo tenant.

python -m deploy.tools.dedicated_worker chogar [--own-namespace] [--image registry.example.com/tenantry:0.1.0]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from tenantry.tenants.namespaces import dedicated_task_queue, temporal_namespace

TEMPLATE = (
    Path(__file__).resolve().parents[1] / "kubernetes" / "templates" / "dedicated-worker.yaml"
)
# The same rule as tenantry.tenants.schemas.Slug: a slug is always a valid Kubernetes name part.
SLUG = re.compile(r"^[a-z][a-z0-9-]{2,39}$")
DEFAULT_IMAGE = "registry.example.com/tenantry:0.1.0"
PLATFORM_NAMESPACE = "default"  # TENANTRY_TEMPORAL_NAMESPACE, as the ConfigMap leaves it


def render(slug: str, *, image: str = DEFAULT_IMAGE, own_namespace: bool = False) -> str:
    if not SLUG.fullmatch(slug):
        raise ValueError(f"not a tenant slug: {slug!r}")
    # Queue and namespace come from the platform's own functions: the scaler watches what the
    # worker polls.
    namespace = temporal_namespace(slug, own=own_namespace, platform=PLATFORM_NAMESPACE)
    text = (
        TEMPLATE.read_text()
        .replace("${TASK_QUEUE}", dedicated_task_queue(slug))
        .replace("${TEMPORAL_NAMESPACE}", namespace)
        .replace("${OWN_NAMESPACE}", "true" if own_namespace else "false")
    )
    return text.replace("${TENANT}", slug).replace(DEFAULT_IMAGE, image)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("slug")
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    parser.add_argument(
        "--own-namespace", action="store_true", help="the tenant has features.own_namespace on"
    )
    args = parser.parse_args(argv)
    sys.stdout.write(render(args.slug, image=args.image, own_namespace=args.own_namespace))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
