"""Render deploy/nginx/nginx.conf.template for a set of API replicas.

    python -m deploy.tools.render_nginx --upstream 10.0.1.11:8000 --upstream 10.0.1.12:8000 \\
        --upstream 10.0.1.13:8000 --server-name api.example.com > /etc/nginx/nginx.conf

The same template serves the tests on loopback and production; only these values differ.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, fields
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1] / "nginx" / "nginx.conf.template"
PLACEHOLDER = re.compile(r"\$\{(NGINX_[A-Z0-9_]+)\}")


class RenderError(ValueError):
    """The values would make a configuration that nginx accepts but that misbehaves."""


@dataclass(frozen=True)
class NginxValues:
    upstreams: tuple[str, ...]
    server_name: str = "_"
    https_listen: str = "443"
    http_listen: str = "80"
    tls_cert: str = "/etc/nginx/tls/tls.crt"
    tls_key: str = "/etc/nginx/tls/tls.key"
    trusted_proxies: tuple[str, ...] = ()
    worker_processes: str = "auto"
    pid_file: str = "/run/nginx.pid"
    error_log: str = "/var/log/nginx/error.log"
    access_log: str = "/var/log/nginx/access.log"
    temp_dir: str = "/var/cache/nginx"
    ssl_stapling: bool = True
    connect_timeout_s: int = 2
    read_timeout_s: int = 15
    next_upstream_timeout_s: int = 20
    max_fails: int = 2
    fail_timeout_s: int = 10


def upstream_servers(upstreams: tuple[str, ...], *, max_fails: int, fail_timeout_s: int) -> str:
    """The `server` lines of the upstream block, one per replica, on one line (envsubst-friendly)."""
    return " ".join(
        f"server {address} max_fails={max_fails} fail_timeout={fail_timeout_s}s;"
        for address in upstreams
    )


def placeholders(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text))


def substitutions(values: NginxValues) -> dict[str, str]:
    if not values.upstreams:
        raise RenderError("at least one upstream (host:port) is needed")
    if values.next_upstream_timeout_s <= values.read_timeout_s:
        raise RenderError(
            "next_upstream_timeout_s must be above read_timeout_s: otherwise a request to a frozen "
            "replica uses up its retry budget waiting and is answered 504 instead of retried"
        )
    real_ip = " ".join(f"set_real_ip_from {network};" for network in values.trusted_proxies)
    stapling = "on" if values.ssl_stapling else "off"
    return {
        "NGINX_UPSTREAM_SERVERS": upstream_servers(
            values.upstreams, max_fails=values.max_fails, fail_timeout_s=values.fail_timeout_s
        ),
        "NGINX_SERVER_NAME": values.server_name,
        "NGINX_HTTPS_LISTEN": values.https_listen,
        "NGINX_HTTP_LISTEN": values.http_listen,
        "NGINX_TLS_CERT": values.tls_cert,
        "NGINX_TLS_KEY": values.tls_key,
        # A comment when no proxy is trusted, so the line stays valid nginx either way.
        "NGINX_REAL_IP_FROM": real_ip or "# no trusted proxy: $remote_addr is the peer",
        "NGINX_WORKER_PROCESSES": values.worker_processes,
        "NGINX_PID_FILE": values.pid_file,
        "NGINX_ERROR_LOG": values.error_log,
        "NGINX_ACCESS_LOG": values.access_log,
        "NGINX_TEMP_DIR": values.temp_dir,
        "NGINX_SSL_STAPLING": stapling,
        "NGINX_CONNECT_TIMEOUT": f"{values.connect_timeout_s}s",
        "NGINX_READ_TIMEOUT": f"{values.read_timeout_s}s",
        "NGINX_NEXT_UPSTREAM_TIMEOUT": f"{values.next_upstream_timeout_s}s",
    }


def render(values: NginxValues, template: str | None = None) -> str:
    text = TEMPLATE.read_text() if template is None else template
    given = substitutions(values)
    missing = placeholders(text) - given.keys()
    if missing:
        raise RenderError(f"no value for {', '.join(sorted(missing))}")
    return PLACEHOLDER.sub(lambda m: given[m.group(1)], text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", action="append", required=True, help="host:port, repeat")
    parser.add_argument("--trusted-proxy", action="append", default=[], help="CIDR, repeat")
    for field in fields(NginxValues):
        if field.name in {"upstreams", "trusted_proxies"}:
            continue
        flag = "--" + field.name.replace("_", "-")
        if field.type == "bool":
            parser.add_argument(flag, choices=["on", "off"], default=None)
        else:
            parser.add_argument(flag, type=int if field.type == "int" else str, default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    given = {
        name: value
        for name, value in vars(args).items()
        if value is not None and name not in {"upstream", "trusted_proxy"}
    }
    if "ssl_stapling" in given:
        given["ssl_stapling"] = given["ssl_stapling"] == "on"
    values = NginxValues(
        upstreams=tuple(args.upstream), trusted_proxies=tuple(args.trusted_proxy), **given
    )
    try:
        sys.stdout.write(render(values))
    except RenderError as exc:
        print(f"render_nginx: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
