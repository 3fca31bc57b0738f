"""An outbound call that failed, as the problem a caller of the API reads."""

from __future__ import annotations

from tenantry.egress.gate import EgressBusy
from tenantry.egress.http import EgressTimeout
from tenantry.egress.policy import EgressError, EgressRefused
from tenantry.errors import AppError, ServiceUnavailable


class UpstreamTimeout(AppError):
    status, code, title = 504, "upstream-timeout", "The other side did not answer in time"


class OutboundBusy(ServiceUnavailable):
    code, title = "outbound-busy", "Too many outbound calls in flight for this tenant"


class EgressForbidden(ServiceUnavailable):
    code, title = "egress-refused", "The target is not allowed by the egress policy"


def problem(error: EgressError, *, what: str) -> AppError:
    """`what` names the other side for a person: "The tenant's directory", say."""
    if isinstance(error, EgressBusy):
        return OutboundBusy(
            f"{what} is busy with this tenant's other requests ({error}).",
            headers={"Retry-After": "5"},
        )
    if isinstance(error, EgressTimeout):
        return UpstreamTimeout(f"{what} did not answer in time ({error}).")
    if isinstance(error, EgressRefused):
        return EgressForbidden(f"{what} may not be reached: {error}.")
    return ServiceUnavailable(f"{what} could not be reached ({error}).")
