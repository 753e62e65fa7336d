"""The Enabled record of the recurring jobs (the seed's RecurringJob; a missing row = enabled)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.schema import Base, UTCDateTime


class RecurringJob(Base):
    """Whether a job (= a Prefect deployment of the same name) is enabled, and who said so."""

    __tablename__ = "recurring_jobs"

    job_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    changed_by: Mapped[str] = mapped_column(String(128))
