"""Who is calling: a function key's name, role and task types, and what that role may do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from backoffice.errors import Forbidden

Role = Literal["consumer", "operator", "admin"]
ROLES: tuple[Role, ...] = ("consumer", "operator", "admin")
_RANK = {"consumer": 0, "operator": 1, "admin": 2}


@dataclass(frozen=True)
class Principal:
    """An authenticated caller. `task_types` None means every type (operators and admins)."""

    name: str
    role: Role
    task_types: frozenset[str] | None = None

    def require_role(self, role: Role) -> None:
        """Raise Forbidden unless this caller has `role` or a higher one."""
        if _RANK[self.role] < _RANK[role]:
            raise Forbidden(f"This operation needs the {role} role; key '{self.name}' is a {self.role}.")

    def require_task_type(self, task_type: str) -> None:
        """Raise Forbidden unless this caller may touch tasks of `task_type`."""
        if self.task_types is not None and task_type not in self.task_types:
            raise Forbidden(f"Key '{self.name}' may not touch tasks of type '{task_type}'.")

    def may_touch(self, task_type: str) -> bool:
        """True when this caller may touch tasks of `task_type`."""
        return self.task_types is None or task_type in self.task_types
