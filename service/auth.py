"""API keys: how they are made and hashed, and who a request turns out to be."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Final

from service.schemas import Role

KEY_PREFIX: Final = "sw_"

#: What each role may do, for messages and the role checks in `service.deps`.
ROLE_ALLOWS: Final[dict[Role, frozenset[Role]]] = {
    Role.AGENT: frozenset({Role.AGENT, Role.ADMIN}),
    Role.REVIEWER: frozenset({Role.REVIEWER, Role.ADMIN}),
    Role.ADMIN: frozenset({Role.ADMIN}),
    Role.DISPATCHER: frozenset({Role.DISPATCHER, Role.ADMIN}),
    Role.DEPARTMENT: frozenset({Role.DEPARTMENT, Role.ADMIN}),
}
#: Who may read cases and their evidence (a department key only those dispatched to its department).
CASE_READERS: Final = frozenset({Role.REVIEWER, Role.DISPATCHER, Role.DEPARTMENT, Role.ADMIN})
#: Who may read the grid map and the deadline policies (only admins change them).
GRID_MAP_READERS: Final = frozenset({Role.REVIEWER, Role.DISPATCHER, Role.ADMIN})


@dataclass(frozen=True, slots=True)
class Principal:
    """The holder of the key a request carried; `key_id` is None for the process-only bootstrap key (and for
    `system`, the grid map dispatching on its own); `department_id` names a department key's department."""

    key_id: int | None
    name: str
    role: Role
    department_id: str | None = None

    @property
    def idempotency_scope(self) -> str:
        """Among whose posts an Idempotency-Key is unique: this key's, or those of any bootstrap key (an
        embedded pipeline gets a new one per run and must still find its earlier posts)."""
        return "bootstrap" if self.key_id is None else f"key-{self.key_id}"


def generate_key() -> str:
    """A new random API key (256 bits of entropy)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """What the database stores for a key; a plain SHA-256 suffices because keys are long and random."""
    return hashlib.sha256(key.encode()).hexdigest()
