"""Telling Temporal one outbox message, with the fitting id policies: starting a workflow that
already runs is success (the conflict policy hands back the running one), and so is starting one
that already ran when its reuse policy forbids another run; a signal or cancel for a workflow that
has ended is done, not an error.

A start goes to the tenant's namespace now (the first client given); a signal or cancel goes to
wherever the workflow is, the tenant's namespace now first (`worker/namespaces.py`)."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from tenantry.outbox.models import OutboxMessage
from tenantry.tenancy.context import TenantRef, tenant_context
from tenantry.worker.namespaces import first_found
from tenantry.worker.queues import start_tenant_workflow

RPC_TIMEOUT = timedelta(seconds=5)
REUSE = {
    "allow_duplicate": WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    "allow_duplicate_failed_only": WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    "reject_duplicate": WorkflowIDReusePolicy.REJECT_DUPLICATE,
}
UNAVAILABLE = {
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.CANCELLED,
}


class TemporalUnavailable(Exception):
    """Temporal did not answer: every message waits, not only this one."""


async def deliver(
    clients: list[Client], message: OutboxMessage, *, tenant: TenantRef, task_queue: str
) -> str:
    """What happened ('started', 'already ran', 'signalled', …); raises when it must be retried."""
    try:
        return await _deliver(clients, message, tenant=tenant, task_queue=task_queue)
    except RPCError as error:
        if error.status in UNAVAILABLE:
            raise TemporalUnavailable(f"{error.status.name}: {error.message}") from error
        raise
    except (OSError, TimeoutError) as error:
        raise TemporalUnavailable(f"{type(error).__name__}: {error}") from error
    except RuntimeError as error:
        # A lazy client that cannot reach the server says so with a plain RuntimeError.
        if "connect" in str(error).lower():
            raise TemporalUnavailable(str(error)) from error
        raise


async def _deliver(
    clients: list[Client], message: OutboxMessage, *, tenant: TenantRef, task_queue: str
) -> str:
    if message.kind == "start":
        try:
            await start_tenant_workflow(
                clients[0],
                message.workflow_type,
                message.arg,
                tenant=tenant,
                task_queue=task_queue,
                full_id=message.workflow_id,
                id_reuse_policy=REUSE[message.reuse_policy or "reject_duplicate"],
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                rpc_timeout=RPC_TIMEOUT,
            )
        except WorkflowAlreadyStartedError:
            return "already ran"
        return "started"
    if message.kind not in ("signal", "cancel"):
        raise ValueError(f"unknown outbox message kind {message.kind}")

    async def tell(client: Client) -> str:
        handle = client.get_workflow_handle(message.workflow_id)
        if message.kind == "signal":
            args = [] if message.arg is None else [message.arg]
            await handle.signal(message.signal, *args, rpc_timeout=RPC_TIMEOUT)
            return "signalled"
        await handle.cancel(rpc_timeout=RPC_TIMEOUT)
        return "cancelled"

    try:
        with tenant_context(tenant):
            return await first_found(clients, tell)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return "workflow closed"
        raise
