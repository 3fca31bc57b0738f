"""Read-your-writes across requests when reads may go to a replica.

Pure ASGI, outermost. A request's reads must see the WAL position its session last wrote at
(`tenantry.db.replica`): the position travels from one request to the next as a signed token, in
a cookie (`tenantry_read_after`, which browsers and HTTP clients with a cookie jar send back by
themselves) and in a response header (`Tenantry-Read-After`, which a client without cookies may
send back as a request header). Any API process reads it: no state is kept per process, so
read-your-writes holds behind a load balancer that spreads one session over every replica of the
API.

What a client that sends neither back gets: its reads may go to the replica before the replica
has replayed its write, and see the state of a moment earlier (the replica's lag, milliseconds
when healthy). Within one request, a write is always followed by reads that see it.

Installed only when a replica is configured.
"""

from __future__ import annotations

import hashlib
from http.cookies import CookieError, SimpleCookie

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantry.db.replica import reading_after, sign_position, verify_position

COOKIE = "tenantry_read_after"
HEADER = b"tenantry-read-after"
# The replica has replayed any write of an hour ago, or it is not fit to serve reads.
MAX_AGE_SECONDS = 3600


def position_key(signing_key: str) -> bytes:
    """A key of its own, derived from the platform's signing key (never the token key itself)."""
    return hashlib.sha256(b"tenantry-read-after:" + signing_key.encode()).digest()


class ReadYourWrites:
    def __init__(self, app: ASGIApp, *, key: bytes) -> None:
        self.app = app
        self.key = key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with reading_after(self._given(scope)) as position:

            async def send_with_position(message: Message) -> None:
                if message["type"] == "http.response.start" and position.wrote:
                    token = sign_position(position.lsn, self.key)
                    cookie = (
                        f"{COOKIE}={token}; Max-Age={MAX_AGE_SECONDS}; Path=/; HttpOnly; "
                        "SameSite=Strict"
                    )
                    message = {
                        **message,
                        "headers": [
                            *message.get("headers", []),
                            (HEADER, token.encode()),
                            (b"set-cookie", cookie.encode()),
                        ],
                    }
                await send(message)

            await self.app(scope, receive, send_with_position)

    def _given(self, scope: Scope) -> int:
        highest = 0
        for name, value in scope.get("headers", []):
            if name == HEADER:
                highest = max(highest, verify_position(value.decode("latin-1"), self.key))
            elif name == b"cookie":
                try:
                    cookies = SimpleCookie(value.decode("latin-1"))
                except CookieError:
                    continue
                if COOKIE in cookies:
                    highest = max(highest, verify_position(cookies[COOKIE].value, self.key))
        return highest
