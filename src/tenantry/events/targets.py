"""Where webhooks may go: the egress policy's answer (globally routable addresses, or what the
operator's allow-list names: on-premise ERP and MES systems live on private networks)."""

from __future__ import annotations

from tenantry.egress.policy import EgressPolicy, EgressRefused
from tenantry.errors import ValidationFailed

SCHEMES = ("http", "https")


async def validate_url(url: str, policy: EgressPolicy) -> None:
    """Refuse, as a 422, a URL whose host is not one webhooks may reach today. Delivery judges
    it again, and connects to the address it judged then."""
    try:
        await policy.target(url, schemes=SCHEMES)
    except EgressRefused as error:
        raise ValidationFailed(
            f"The webhook URL is not allowed: {error}.",
            code="forbidden-webhook-target",
            errors=[{"field": "body.url", "message": str(error)}],
        ) from None
