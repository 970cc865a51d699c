"""The one place HTTP answers reveal sealed personal data (ADR 0008).

Read models hold sealed strings only. This ASGI middleware buffers each JSON answer of the APIs; when it
holds sealed strings (most do not: one `bytes.find`), it loads the keys of the subjects they name for the
caller's tenant and opens them in place — or writes `[erased]` for an erased subject.
"""

from __future__ import annotations

from typing import Any, cast

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from adapters.event_store.sealing import MARK
from adapters.subject_keys import KeyRing, reveal_bytes
from domain.access.roles import Principal

API_PATHS = ("/v1/", "/api/v1/")


class RevealSealed:
    """Opens sealed strings in the answers of `/v1` and `/api/v1`, for the tenant of the caller."""

    def __init__(self, app: ASGIApp, keyring: KeyRing) -> None:
        self.app = app
        self.keyring = keyring

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or not scope.get("path", "").startswith(API_PATHS):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] | None = None
        chunks: list[bytes] = []

        async def buffered(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = dict(message)
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            body = b"".join(chunks)
            principal = scope.get("user")
            if MARK in body and isinstance(principal, Principal):
                body = await reveal_bytes(body, principal.tenant_id, self.keyring)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send(cast(Message, {**start, "headers": headers}))
            await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, buffered)
