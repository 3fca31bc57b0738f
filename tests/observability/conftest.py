"""Observability tests use the knowledge tests' tenant-with-an-admin fixture."""

from tests.knowledge.conftest import kb  # noqa: F401 (a fixture)
