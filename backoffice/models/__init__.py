"""All tables. Importing this package registers every model on `Base.metadata`."""

from backoffice.models import accounting, jobs, queue, warehouse
from backoffice.models.base import Base

__all__ = ["Base", "accounting", "jobs", "queue", "warehouse"]
