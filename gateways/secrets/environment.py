"""Secrets from environment variables (read once, by the composition root, and handed over)."""

from __future__ import annotations

from collections.abc import Mapping

from commands.secrets import SecretNotFound


class EnvironmentSecrets:
    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = {k: v for k, v in values.items() if v}

    async def get(self, name: str) -> str:
        try:
            return self._values[name]
        except KeyError:
            raise SecretNotFound(f"secret {name!r} is not set") from None
