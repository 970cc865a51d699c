"""SDK clients kept per endpoint: an agent may override its provider's base URL."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar


class Closable(Protocol):
    def close(self) -> Awaitable[None]: ...


C = TypeVar("C", bound=Closable)


class ClientsByBaseUrl(Generic[C]):
    """One client per base URL (None: the provider's default), made on first use and closed together.

    The clients use the SDKs' aiohttp transport, whose connection pool finds a free connection without
    scanning the pool (the default transport's did, which once made several clients per endpoint pay).
    """

    def __init__(self, make: Callable[[str | None], C], default_base_url: str | None) -> None:
        self._make = make
        self._default = default_base_url
        self._clients: dict[str | None, C] = {}

    def get(self, base_url: str | None) -> C:
        url = base_url or self._default
        if url not in self._clients:
            self._clients[url] = self._make(url)
        return self._clients[url]

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()
