"""Render deploy/kubernetes/templates/dedicated-worker.yaml for one silo tenant.

python -m deploy.tools.dedicated_worker chogar [--image registry.example.com/tenantry:0.1.0]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from tenantry.tenants.namespaces import dedicated_task_queue

TEMPLATE = (
    Path(__file__).resolve().parents[1] / "kubernetes" / "templates" / "dedicated-worker.yaml"
)
# The same rule as tenantry.tenants.schemas.Slug: a slug is always a valid Kubernetes name part.
SLUG = re.compile(r"^[a-z][a-z0-9-]{2,39}$")
DEFAULT_IMAGE = "registry.example.com/tenantry:0.1.0"


def render(slug: str, *, image: str = DEFAULT_IMAGE) -> str:
    if not SLUG.fullmatch(slug):
        raise ValueError(f"not a tenant slug: {slug!r}")
    # The queue comes from the platform's own function: the scaler watches what the worker polls.
    text = TEMPLATE.read_text().replace("${TASK_QUEUE}", dedicated_task_queue(slug))
    return text.replace("${TENANT}", slug).replace(DEFAULT_IMAGE, image)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("slug")
    parser.add_argument("--image", default=DEFAULT_IMAGE)
    args = parser.parse_args(argv)
    sys.stdout.write(render(args.slug, image=args.image))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
