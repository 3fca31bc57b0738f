"""Adding the console to the app: its routes, its static files and its gateway."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from tenantry.console import (
    admin_platform,
    admin_tenant_config,
    admin_tenant_ops,
    admin_tenant_records,
    admin_tenants,
    auth,
    auth_oidc,
    tenant_config,
    tenant_home,
    tenant_incidents,
    tenant_knowledge,
    tenant_people,
    tenant_sso,
    tenant_webhooks,
)
from tenantry.console.forms import csrf_protect
from tenantry.console.gateway import ConsoleGateway
from tenantry.identity.dependencies import PUBLIC, guard

STATIC = Path(__file__).parent / "static"
PAGES = (
    auth,
    auth_oidc,
    admin_tenants,
    admin_tenant_config,
    admin_tenant_ops,
    admin_tenant_records,
    admin_platform,
    tenant_home,
    tenant_people,
    tenant_webhooks,
    tenant_config,
    tenant_sso,
    tenant_knowledge,
    tenant_incidents,
)


def console_router() -> APIRouter:
    """Every console route, CSRF-checked, out of the API's OpenAPI schema."""
    router = APIRouter(
        prefix="/console",
        include_in_schema=False,
        dependencies=[Depends(csrf_protect)],
        default_response_class=HTMLResponse,
    )
    router.add_api_route("", auth.home, methods=["GET"], **guard(PUBLIC))
    for module in PAGES:
        router.include_router(module.router)
    return router


def install(app: FastAPI) -> None:
    """Call after every other middleware is added: the gateway must be the outermost."""
    app.include_router(console_router())
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    app.add_middleware(ConsoleGateway, state=app.state)


def console_routes() -> list[tuple[str, str, str]]:
    """(method, path, permission) of every console page and action, for the isolation tests:
    the console is left out of the OpenAPI schema, so its routes are listed from here."""
    listed = [("GET", "/console", "public")]
    for module in PAGES:
        for route in module.router.routes:
            permission = (route.openapi_extra or {}).get("x-permission")
            for method in sorted(route.methods):
                listed.append((method, "/console" + route.path, permission))
    return listed
