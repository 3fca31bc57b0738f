"""Re-run a request whose transaction failed with a serialisation failure or a deadlock.

Pure ASGI, innermost (right around the router and its exception handlers), so authentication,
limits and metering happen once. The request body is recorded as the endpoint reads it, up to
`replay_limit` bytes, and handed again to the next run; a request whose body was larger, or whose
response had already started, is not re-run. The database's policy bounds the runs; a conflict
that is not resolved is a 503 problem with Retry-After, never a 500.

A re-run repeats the whole endpoint. The transaction that failed was rolled back; an endpoint with
an earlier transaction of its own committed repeats that one too, so such earlier steps must be
idempotent (they are: reads, and marks and deletes that a second run finds done).
"""

from __future__ import annotations

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantry.db.retry import is_retryable
from tenantry.errors import TransactionConflict
from tenantry.problems import problem_response

log = structlog.get_logger("tenantry.retry")


class _CannotReplay(Exception):
    """A retryable failure of a request that cannot run again (no `__cause__`: not retried)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _Body:
    """The request's body messages as the endpoint receives them, for the next run."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self.receive = receive
        self.limit = limit
        self.recorded: list[Message] = []
        self.size = 0
        self.replayable = True

    def receiver(self) -> Receive:
        replay = list(self.recorded)

        async def receive() -> Message:
            if replay:
                return replay.pop(0)
            message = await self.receive()
            if message["type"] == "http.request" and self.replayable:
                self.size += len(message.get("body", b""))
                if self.size > self.limit:
                    self.replayable = False
                    self.recorded.clear()
                else:
                    self.recorded.append(message)
            return message

        return receive


class RetryTransactions:
    def __init__(self, app: ASGIApp, *, state, replay_limit: int) -> None:
        self.app = app
        self.state = state  # the app's state: its `db` owns the retry policy
        self.replay_limit = replay_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = _Body(receive, self.replay_limit)
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def run() -> None:
            try:
                await self.app(scope, body.receiver(), watched_send)
            except Exception as error:
                if is_retryable(error) and (started or not body.replayable):
                    raise _CannotReplay(error) from None
                raise

        try:
            try:
                await run()  # the first run costs no retry machinery: failures are rare
                return
            except Exception as error:
                if not is_retryable(error):
                    raise
                failed = error
            async for attempt in self.state.db.retrying():
                with attempt:
                    if attempt.retry_state.attempt_number == 1:
                        raise failed  # that run was the policy's first attempt
                    await run()
                    return
        except _CannotReplay as stop:
            if started:
                raise stop.error from None
        except Exception as error:
            if not is_retryable(error):
                raise
        log.warning("transaction conflict not resolved", path=scope["path"])
        await problem_response(TransactionConflict(), instance=scope["path"])(scope, receive, send)
