"""Secrets from HashiCorp Vault (or OpenBao) KV v2 through hvac, with token or AppRole auth, cached for a TTL.

A name is `path#key` (e.g. `llm/openai#api_key`), read from the KV v2 mount (default `secret`).
hvac is synchronous: calls run in a thread.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import hvac
import hvac.exceptions

from commands.secrets import SecretNotFound


class VaultSecrets:
    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        role_id: str | None = None,
        secret_id: str | None = None,
        mount: str = "secret",
        ttl: float = 300.0,
        timeout: int = 5,
    ) -> None:
        if not token and not (role_id and secret_id):
            raise ValueError("Vault needs a token, or an AppRole role id and secret id")
        self._client = hvac.Client(url=url, token=token, timeout=timeout)
        self._approle = (role_id, secret_id) if not token else None
        self._mount = mount
        self._ttl = ttl
        self._cache: dict[str, tuple[float, str]] = {}
        self._lock = asyncio.Lock()

    async def get(self, name: str) -> str:
        cached = self._cache.get(name)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        async with self._lock:
            value = await asyncio.to_thread(self._read, name)
        self._cache[name] = (time.monotonic() + self._ttl, value)
        return value

    def _read(self, name: str) -> str:
        path, _, key = name.partition("#")
        key = key or "value"
        if self._approle and not self._client.is_authenticated():
            role_id, secret_id = self._approle
            self._client.auth.approle.login(role_id=role_id, secret_id=secret_id)
        try:
            response: dict[str, Any] = self._client.secrets.kv.v2.read_secret_version(
                path=path, mount_point=self._mount, raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath:
            raise SecretNotFound(f"secret {name!r} is not in Vault") from None
        except hvac.exceptions.Forbidden:
            raise SecretNotFound(f"secret {name!r} may not be read with these credentials") from None
        data = response["data"]["data"]
        if key not in data:
            raise SecretNotFound(f"secret {name!r} has no key {key!r}")
        return str(data[key])
