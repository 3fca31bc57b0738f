"""`/v1/sso/ldap`: a tenant admin's directory settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from tenantry.api_support import database, egress_policy
from tenantry.db.session import Database
from tenantry.egress.policy import EgressPolicy
from tenantry.identity import sso
from tenantry.identity.dependencies import Caller, guard
from tenantry.identity.permissions import Permission
from tenantry.identity.schemas import LdapConfigIn, LdapConfigOut

router = APIRouter(prefix="/v1/sso/ldap", tags=["sso"])
Db = Annotated[Database, Depends(database)]
Policy = Annotated[EgressPolicy, Depends(egress_policy)]


@router.get("", response_model=LdapConfigOut, **guard(Permission.SSO_MANAGE, 404))
async def show_ldap(subject: Caller, db: Db) -> LdapConfigOut:
    async with db.tenant(subject.tenant.id) as session:
        return LdapConfigOut.model_validate(
            await sso.get_config(session, tenant_id=subject.tenant.id)
        )


@router.put("", response_model=LdapConfigOut, **guard(Permission.SSO_MANAGE))
async def put_ldap(body: LdapConfigIn, subject: Caller, db: Db, policy: Policy) -> LdapConfigOut:
    await sso.check_reachable(policy, body.server_url)  # resolving: before any transaction
    async with db.tenant(subject.tenant.id) as session:
        config = await sso.put_config(
            session, tenant_id=subject.tenant.id, data=body, actor=subject
        )
        return LdapConfigOut.model_validate(config)


@router.delete("", status_code=status.HTTP_204_NO_CONTENT, **guard(Permission.SSO_MANAGE, 404))
async def delete_ldap(subject: Caller, db: Db) -> Response:
    async with db.tenant(subject.tenant.id) as session:
        await sso.delete_config(session, tenant_id=subject.tenant.id, actor=subject.audit_name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
