"""SDK clients kept per endpoint: an agent may override its provider's base URL."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Iterator
from typing import Generic, Protocol, TypeVar


class Closable(Protocol):
    def close(self) -> Awaitable[None]: ...


C = TypeVar("C", bound=Closable)
# The SDKs' HTTP pool (httpcore) looks at every connection it holds on each request, so one pool with
# hundreds of calls in flight spends its time scanning; a few clients per endpoint, taken in turn, keep
# each pool small (measured in tests/bench/engine.py: a third less CPU per call at 1,000 in flight).
SHARDS = 8


class ClientsByBaseUrl(Generic[C]):
    """A few clients per base URL (None: the provider's default), made on first use and closed together."""

    def __init__(self, make: Callable[[str | None], C], default_base_url: str | None, *, shards: int = SHARDS) -> None:
        self._make = make
        self._default = default_base_url
        self._shards = shards
        self._clients: dict[str | None, list[C]] = {}
        self._turns: dict[str | None, Iterator[C]] = {}

    def get(self, base_url: str | None) -> C:
        url = base_url or self._default
        if url not in self._clients:
            self._clients[url] = [self._make(url) for _ in range(self._shards)]
            self._turns[url] = itertools.cycle(self._clients[url])
        return next(self._turns[url])

    async def close(self) -> None:
        for clients in self._clients.values():
            for client in clients:
                await client.close()
        self._clients.clear()
        self._turns.clear()
