"""Daily usage counters per tenant and metric."""

from __future__ import annotations

from datetime import date

from sqlalchemy import BigInteger, Date, Text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.db.base import Base, TenantOwned


class UsageDaily(TenantOwned, Base):
    __tablename__ = "usage_daily"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    metric: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)
