"""Observability tests use the knowledge and incident tests' fixtures (a tenant with an admin,
and one whose knowledge explains the boiler reset)."""

from tests.incidents.conftest import desk  # noqa: F401 (a fixture)
from tests.knowledge.conftest import kb  # noqa: F401 (a fixture)
