"""A tenant's data key, stored only wrapped (AES-GCM under the platform key)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, TenantOwned, utcnow


class TenantKey(TenantOwned, Base):
    __tablename__ = "tenant_keys"

    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
