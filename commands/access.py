"""Commands and handlers of the access context: issuing and revoking API keys."""

from __future__ import annotations

import hashlib
import secrets
from uuid import UUID

import msgspec

from commands.ports import EventStore
from commands.results import CommandResult
from commands.unit_of_work import change, create, new_aggregate_id
from domain.access.api_key import ApiKey
from domain.aggregate import CommandContext

KEY_PREFIX = "aiwp"


class IssueApiKey(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    roles: list[str]


class RevokeApiKey(msgspec.Struct, frozen=True, kw_only=True):
    key_id: UUID
    reason: str = "revoked by request"


class IssuedApiKey(msgspec.Struct, frozen=True, kw_only=True):
    result: CommandResult
    key: str  # shown once: only its hash is stored


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_key(key: str) -> tuple[UUID, str] | None:
    """`aiwp_<key id hex>_<secret>` → (key id, secret); None when it is not one of ours."""
    prefix, _, rest = key.partition("_")
    key_hex, _, secret = rest.partition("_")
    if prefix != KEY_PREFIX or len(key_hex) != 32 or not secret:
        return None
    try:
        return UUID(hex=key_hex), secret
    except ValueError:
        return None


async def issue_api_key(store: EventStore, ctx: CommandContext, cmd: IssueApiKey) -> IssuedApiKey:
    """Issues a key for the caller's tenant; the plain key is returned once and never stored."""
    secret = secrets.token_urlsafe(32)
    key_id = new_aggregate_id(ctx, ApiKey, None)
    key, event = ApiKey.issue(ctx, key_id, name=cmd.name, roles=cmd.roles, secret_sha256=secret_digest(secret))
    result = await create(store, key, event)
    return IssuedApiKey(result=result, key=f"{KEY_PREFIX}_{key_id.hex}_{secret}")


async def revoke_api_key(store: EventStore, ctx: CommandContext, cmd: RevokeApiKey) -> CommandResult:
    """Revokes a key: it stops working at once."""
    return await change(store, ApiKey, cmd.key_id, ctx, lambda key: key.revoke(ctx, reason=cmd.reason))
