"""Authentication (bearer JWTs and API keys) and authorization (a permission per route) for Litestar."""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.types import ASGIApp, Scopes

from adapters.http.tokens import InvalidToken, TokenVerifier
from commands.access import secret_digest, split_key
from commands.errors import AggregateNotFound
from commands.ports import EventStore
from domain.access.api_key import ApiKey
from domain.access.roles import Permission, Principal

CHALLENGE = 'Bearer realm="aiwp"'
PUBLIC_PATHS = ("/health", "/schema", "/metrics")


def unauthorized(reason: str) -> NotAuthorizedException:
    return NotAuthorizedException(detail=reason, headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'})


class ApiKeyVerifier:
    """Checks `aiwp_<id>_<secret>` keys against the key's aggregate: a revoked key stops at once."""

    def __init__(self, store: EventStore) -> None:
        self._store = store

    async def verify(self, key: str) -> Principal:
        parts = split_key(key)
        if parts is None:
            raise InvalidToken("the API key is malformed")
        key_id, secret = parts
        try:
            stored = await self._store.get(ApiKey, key_id)
        except AggregateNotFound:
            raise InvalidToken("the API key is not known") from None
        if not hmac.compare_digest(stored.secret_sha256, secret_digest(secret)):
            raise InvalidToken("the API key is not known")
        if stored.revoked:
            raise InvalidToken("the API key was revoked")
        return Principal(
            subject=f"api-key:{key_id}", tenant_id=stored.tenant_id, roles=frozenset(stored.roles), via="api_key"
        )


class AuthenticationMiddleware(AbstractAuthenticationMiddleware):
    """`Authorization: Bearer <JWT>` or `X-API-Key: aiwp_...`; anything else answers 401 with a challenge."""

    def __init__(
        self,
        app: ASGIApp,
        tokens: TokenVerifier,
        api_keys: ApiKeyVerifier,
        exclude: str | list[str] | None = None,
        scopes: Scopes | None = None,
    ) -> None:
        super().__init__(app, exclude=exclude, scopes=scopes)
        self._tokens = tokens
        self._api_keys = api_keys

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> AuthenticationResult:
        api_key = connection.headers.get("x-api-key")
        authorization = connection.headers.get("authorization", "")
        try:
            if api_key:
                principal = await self._api_keys.verify(api_key)
            else:
                scheme, _, token = authorization.partition(" ")
                if scheme.lower() != "bearer" or not token.strip():
                    raise InvalidToken("send a bearer token (Authorization: Bearer ...) or an X-API-Key")
                principal = await self._tokens.verify(token.strip())
        except InvalidToken as error:
            raise unauthorized(str(error)) from None
        return AuthenticationResult(user=principal, auth=principal.via)


def requires(permission: Permission) -> Any:
    """A route guard: the caller's roles must grant `permission` (403 otherwise)."""

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = connection.user
        if not isinstance(principal, Principal) or not principal.may(permission):
            raise PermissionDeniedException(detail=f"this needs the permission {permission!r}, which your roles lack")

    return guard
