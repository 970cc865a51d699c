"""The secrets port: API keys and credentials by name, from wherever the deployment keeps them."""

from __future__ import annotations

from typing import Protocol


class SecretNotFound(Exception):
    """No secret of that name; the message names it, never its value."""


class Secrets(Protocol):
    async def get(self, name: str) -> str:
        """The secret's value; raises `SecretNotFound`."""
        ...
