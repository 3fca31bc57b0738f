"""Connection URLs: the administrative one (migrations) and the application's (`tenantry_app`)."""

from __future__ import annotations

from sqlalchemy.engine import URL, make_url

from tenantry.settings import APP_ROLE, Settings


def sqlalchemy_url(url: str | URL) -> URL:
    """The same URL with the psycopg 3 driver, whatever scheme it was given with."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql+psycopg")


def app_url(settings: Settings, admin_url: str) -> URL:
    """The application's URL: explicit, or the admin URL with the `tenantry_app` role."""
    if settings.app_database_url:
        return sqlalchemy_url(settings.app_database_url)
    password = settings.app_db_password.get_secret_value() if settings.app_db_password else None
    return sqlalchemy_url(admin_url).set(username=APP_ROLE, password=password)


def replica_app_url(settings: Settings) -> URL | None:
    """How the application reads from the replica: as `tenantry_app`, as on the primary."""
    if not settings.replica_database_url:
        return None
    password = settings.app_db_password.get_secret_value() if settings.app_db_password else None
    return sqlalchemy_url(settings.replica_database_url).set(username=APP_ROLE, password=password)


def libpq_dsn(url: str | URL) -> str:
    """A libpq connection string (for psycopg's own connect), passwords included."""
    parsed = sqlalchemy_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)
