"""FastAPI dependencies shared by every router: the database and the platform settings."""

from __future__ import annotations

from fastapi import Request

from tenantry.db.session import Database
from tenantry.settings import Settings


def database(request: Request) -> Database:
    return request.app.state.db


def settings_of(request: Request) -> Settings:
    return request.app.state.settings
