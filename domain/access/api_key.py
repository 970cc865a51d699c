"""`ApiKey`: a credential for a programmatic client; only a hash of its secret is ever recorded."""

from __future__ import annotations

from typing import Any, Self
from uuid import UUID

from domain.access.errors import AccessError
from domain.access.roles import ROLES
from domain.aggregate import Aggregate, CommandContext
from domain.events import DomainEvent


class ApiKeyIssued(DomainEvent, frozen=True, kw_only=True):
    name: str
    roles: list[str]
    secret_sha256: str


class ApiKeyRevoked(DomainEvent, frozen=True, kw_only=True):
    reason: str


class ApiKey(Aggregate, kw_only=True):
    creation_event = ApiKeyIssued

    name: str
    roles: list[str]
    secret_sha256: str
    revoked: bool = False

    @classmethod
    def issue(
        cls, ctx: CommandContext, key_id: UUID, *, name: str, roles: list[str], secret_sha256: str
    ) -> tuple[Self, ApiKeyIssued]:
        if not name.strip():
            raise AccessError("an API key needs a name")
        unknown = sorted(set(roles) - set(ROLES))
        if not roles or unknown:
            raise AccessError(f"roles must be some of {list(ROLES)}; unknown: {unknown}")
        if len(secret_sha256) != 64:
            raise AccessError("the key's secret must be recorded as a SHA-256 hex digest")
        return cls._create(ctx, key_id, ApiKeyIssued, name=name, roles=sorted(set(roles)), secret_sha256=secret_sha256)

    def revoke(self, ctx: CommandContext, *, reason: str) -> list[DomainEvent]:
        if self.revoked:
            raise AccessError(f"API key {self.id} is already revoked")
        return [self._trigger(ctx, ApiKeyRevoked, reason=reason)]

    @classmethod
    def created_by(cls, event: Any) -> Self:
        assert isinstance(event, ApiKeyIssued)
        return cls(**cls._identity(event), name=event.name, roles=event.roles, secret_sha256=event.secret_sha256)

    def apply(self, event: Any) -> None:
        match event:
            case ApiKeyRevoked():
                self.revoked = True
            case _:
                super().apply(event)
