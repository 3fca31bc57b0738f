"""From form fields to the services' own input models, and the checks every unsafe request gets."""

from __future__ import annotations

from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from tenantry.console import session as sessions
from tenantry.errors import ValidationFailed

M = TypeVar("M", bound=BaseModel)
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def parse(model: type[M], **fields: Any) -> M:
    """`model` from form values, or the 422 the API gives, naming each field as `form.<name>`."""
    try:
        # A form's values are all text: "10" is the number ten here, as JSON's 10 is over the API.
        return model.model_validate(fields, strict=False)
    except ValidationError as error:
        errors = [
            {
                "field": ".".join(["form", *(str(p) for p in e["loc"])]) if e["loc"] else "form",
                "message": e["msg"],
            }
            for e in error.errors()
        ]
        named = ", ".join(e["field"] for e in errors)
        raise ValidationFailed(f"Invalid value for {named}.", errors=errors) from None


def blank_to_none(value: str | None) -> str | None:
    return value.strip() or None if value is not None else None


async def csrf_protect(request: Request) -> None:
    """Every unsafe request echoes the session's CSRF token, and comes from this origin."""
    if request.method in sessions.SAFE_METHODS:
        return
    origin = request.headers.get("origin")
    if origin and origin != "null" and _origin_of(str(request.base_url)) != origin:
        raise sessions.CsrfRefused("The request came from another site; nothing was changed.")
    given = request.headers.get(sessions.CSRF_HEADER)
    content_type = request.headers.get("content-type", "")
    if given is None and content_type.startswith(FORM_TYPES):
        value = (await request.form()).get(sessions.CSRF_FIELD)
        given = value if isinstance(value, str) else None
    if not sessions.csrf_matches(sessions.current(request), given):
        raise sessions.CsrfRefused(
            "This form has expired or did not come from this console; nothing was changed. "
            "Reload the page and try again."
        )


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def safe_next(target: str | None, default: str = "/console") -> str:
    """Only a console page of this site: never another host after signing in."""
    if not target or not target.startswith("/console") or target.startswith("//"):
        return default
    if "\\" in target or any(ord(c) < 32 for c in target):
        return default
    return target
