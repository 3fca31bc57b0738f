"""Waiting for workflows that the outbox relay starts after the API's commit."""

from __future__ import annotations

import asyncio

from temporalio.service import RPCError, RPCStatusCode


async def started(temporal_client, workflow_id: str, *, polls: int = 1500):
    """The workflow's handle once it exists (bounded: about 30 s)."""
    handle = temporal_client.get_workflow_handle(workflow_id)
    for _ in range(polls):
        try:
            await handle.describe()
            return handle
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
        await asyncio.sleep(0.02)
    raise AssertionError(f"{workflow_id} was never started")
