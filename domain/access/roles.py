"""Roles, the permissions they grant, and the authenticated caller every command and query acts for."""

from __future__ import annotations

from typing import Literal

import msgspec

Role = Literal["admin", "operator", "viewer", "auditor"]
ROLES: tuple[Role, ...] = ("admin", "operator", "viewer", "auditor")
Permission = Literal["commands:write", "reads", "audit:read", "api-keys:manage", "budgets:manage"]

GRANTS: dict[str, frozenset[str]] = {
    "admin": frozenset({"commands:write", "reads", "audit:read", "api-keys:manage", "budgets:manage"}),
    "operator": frozenset({"commands:write", "reads"}),
    "viewer": frozenset({"reads"}),
    "auditor": frozenset({"reads", "audit:read"}),
}


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """The authenticated caller: a token's subject or an API key, in one tenant, with its roles."""

    subject: str
    tenant_id: str
    roles: frozenset[str]
    via: Literal["token", "api_key"] = "token"

    def may(self, permission: Permission) -> bool:
        return any(permission in GRANTS.get(role, frozenset()) for role in self.roles)
