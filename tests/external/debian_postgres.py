"""Debian's own PostgreSQL with pgvector, started on loopback in a folder of its own.

The server is the `postgresql` package (the version the Debian release ships: 15 on bookworm),
installed when missing. pgvector: Debian's `postgresql-NN-pgvector` when the release has it;
bookworm has none, so Debian's `pgvector` source package (from the release that ships it) is
built against the installed server's headers (`postgresql-server-dev-NN`) and installed, once
per machine. Where none of that can be done, the test is skipped with the reason (with CI=true it
fails instead).
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.servers import _give_up, free_port

POSTGRES_LIB = Path("/usr/lib/postgresql")
SYSTEM_USER = "postgres"  # created by Debian's package; the server never runs as root
# The Debian release whose `pgvector` source package is built when this one ships no binary.
PGVECTOR_SOURCE_SUITE = "trixie"


def _apt(*args: str, env_extra: dict[str, str] | None = None) -> bool:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", **(env_extra or {})}
    return subprocess.run(["apt-get", *args], env=env, capture_output=True).returncode == 0


def _apt_install(*packages: str) -> bool:
    install = ("install", "-y", "-q", "--no-install-recommends", *packages)
    if _apt(*install):
        return True
    _apt("update", "-q")
    return _apt(*install)


def _server_bin() -> Path | None:
    found = sorted(POSTGRES_LIB.glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


def require_debian_postgres() -> Path:
    """The bin folder of Debian's newest installed PostgreSQL, with pgvector available."""
    can_install = os.geteuid() == 0 and shutil.which("apt-get") is not None
    bin_dir = _server_bin()
    if bin_dir is None and can_install:
        _apt_install("postgresql")
        bin_dir = _server_bin()
    if bin_dir is None:
        _give_up("Debian's postgresql is missing and could not be installed")
    version = bin_dir.parent.name
    if not _has_pgvector(version):
        if not can_install:
            _give_up(f"pgvector for Debian's PostgreSQL {version} is missing (not root)")
        if not _apt_install(f"postgresql-{version}-pgvector"):
            _build_pgvector(version)
        if not _has_pgvector(version):
            _give_up(f"pgvector for Debian's PostgreSQL {version} could not be installed")
    return bin_dir


def _has_pgvector(version: str) -> bool:
    return Path(f"/usr/share/postgresql/{version}/extension/vector.control").exists()


def _build_pgvector(version: str) -> None:
    """Debian's pgvector source package, built and installed for this server."""
    if not _apt_install(f"postgresql-server-dev-{version}", "build-essential"):
        return
    work = Path(tempfile.mkdtemp(prefix="tenantry-pgvector-"))
    try:
        lists = work / "lists"
        (lists / "partial").mkdir(parents=True)
        sources = work / "sources.list"
        sources.write_text(f"deb-src http://deb.debian.org/debian {PGVECTOR_SOURCE_SUITE} main\n")
        # A source list of its own: the machine's apt configuration is left as it is.
        own = [
            "-o", f"Dir::Etc::SourceList={sources}",
            "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", f"Dir::State::Lists={lists}",
        ]  # fmt: skip
        if not _apt(*own, "update", "-q"):
            return
        fetched = subprocess.run(
            ["apt-get", *own, "source", "--download-only", "pgvector"],
            cwd=work,
            capture_output=True,
        )
        if fetched.returncode != 0:
            return
        (tarball,) = work.glob("pgvector_*.orig.tar.*")
        subprocess.run(["tar", "-xf", str(tarball)], cwd=work, check=True, capture_output=True)
        (source,) = [p for p in work.iterdir() if p.is_dir() and p.name.startswith("pgvector")]
        pg_config = f"PG_CONFIG={POSTGRES_LIB / version / 'bin' / 'pg_config'}"
        jobs = f"-j{os.cpu_count() or 1}"
        for target in ([jobs], ["install"]):
            subprocess.run(
                ["make", *target, pg_config], cwd=source, check=True, capture_output=True
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


@dataclass
class DebianPostgres:
    """A server of its own: initdb in a temporary folder, TCP on 127.0.0.1 with passwords."""

    bin_dir: Path
    folder: Path
    port: int
    password: str
    user: str = "tenantry_admin"

    @classmethod
    def start(cls, bin_dir: Path) -> DebianPostgres:
        folder = Path(tempfile.mkdtemp(prefix="tenantry-debian-pg-"))
        folder.chmod(0o755)
        server = cls(bin_dir, folder, free_port(), secrets.token_hex(16))
        server._initdb()
        server._run("pg_ctl", "-D", str(server.data), "-w", "-l", str(folder / "server.log"),
                    "-o", f"-h 127.0.0.1 -p {server.port} -k {folder}", "start")  # fmt: skip
        with psycopg.connect(server.dsn("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE tenantry")
        return server

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def url(self, database: str = "tenantry") -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "tenantry") -> str:
        return f"host=127.0.0.1 port={self.port} dbname={database} user={self.user} password={self.password}"

    def version(self) -> str:
        with psycopg.connect(self.dsn()) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)

    def _initdb(self) -> None:
        secret = self.folder / "pwfile"
        secret.write_text(self.password)
        if os.geteuid() == 0:
            entry = pwd.getpwnam(SYSTEM_USER)
            for path in (self.folder, secret):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", self.user, f"--pwfile={secret}",
                  "--auth-local=peer", "--auth-host=scram-sha-256", "--encoding=UTF8",
                  "--locale=C.UTF-8")  # fmt: skip
        secret.unlink()

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        user = {"user": SYSTEM_USER} if os.geteuid() == 0 else {}
        subprocess.run([str(self.bin_dir / tool), *args], check=check, capture_output=True, **user)
