"""A local Redis for `tenantry run`, so that several API processes share their limits.

Started only when more than one API process is asked for, TENANTRY_REDIS_URL is unset and a
`redis-server` binary is installed (Debian's `redis-server` package; the PyPI wheel of that name
has no build for this Python). It listens on a Unix socket under the home, keeps nothing on disk,
and stops with `tenantry run`. Without the binary, `tenantry run` serves from one process.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SOCKET_PATH_MAX = 100


def redis_binary() -> str | None:
    return shutil.which(
        "redis-server", path=os.pathsep.join([os.environ.get("PATH", ""), SEARCH_PATH])
    )


class LocalRedis:
    def __init__(self, home: Path, binary: str) -> None:
        self.folder = home / "redis"
        self.binary = binary
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self, *, timeout: float = 20) -> str:
        self.folder.mkdir(parents=True, exist_ok=True)
        sock = self.folder / "redis.sock"
        sock.unlink(missing_ok=True)
        if len(str(sock)) <= SOCKET_PATH_MAX:
            listen = ["--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"]
            self.url = f"unix://{sock}"
        else:  # a home too deep for a socket path: loopback on a free port
            port = _free_port()
            listen = ["--port", str(port), "--bind", "127.0.0.1"]
            self.url = f"redis://127.0.0.1:{port}/0"
        command = [self.binary, *listen, "--save", "", "--appendonly", "no"]
        command += ["--dir", str(self.folder), "--logfile", str(self.folder / "redis.log")]
        self.process = subprocess.Popen(command, process_group=0, stdout=subprocess.DEVNULL)
        self._wait_until_up(timeout)
        return self.url

    def _wait_until_up(self, timeout: float) -> None:
        import redis

        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.process.poll() is not None:
                    raise RuntimeError(f"redis-server exited; see {self.folder / 'redis.log'}")
                try:
                    client.ping()
                    return
                except redis.RedisError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self, timeout: float = 3) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
