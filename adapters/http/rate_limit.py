"""Rate limits per subject and per tenant: fixed windows counted atomically in Redis (one Lua script).

When Redis cannot be reached the limiter fails closed: the request answers 503, never passes unchecked.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

# For each key: INCR, set the window's expiry on the first hit; return the first exhausted key's wait in ms.
HIT_SCRIPT = """
for i, key in ipairs(KEYS) do
  local count = redis.call('INCR', key)
  if count == 1 then redis.call('PEXPIRE', key, ARGV[2 * i]) end
  if count > tonumber(ARGV[2 * i - 1]) then
    local wait = redis.call('PTTL', key)
    if wait < 0 then wait = tonumber(ARGV[2 * i]) end
    return wait
  end
end
return 0
"""


class LimiterUnavailable(Exception):
    """The limiter's store cannot be reached."""


class RateLimiter(Protocol):
    async def hit(self, limits: Sequence[tuple[str, int, int]]) -> float:
        """Counts one request against each (key, limit, window); returns 0 or the seconds to wait."""
        ...


class RedisRateLimiter:
    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._script = client.register_script(HIT_SCRIPT)

    async def hit(self, limits: Sequence[tuple[str, int, int]]) -> float:
        keys = [key for key, _, _ in limits]
        args: list[int] = []
        for _, limit, window in limits:
            args += [limit, window * 1000]
        try:
            wait_ms = await asyncio.wait_for(self._script(keys=keys, args=args), timeout=2.0)
        except (RedisError, OSError, TimeoutError) as error:
            raise LimiterUnavailable(f"rate limiter unavailable: {type(error).__name__}") from None
        return int(wait_ms) / 1000


class MemoryRateLimiter:
    """The embedded mode's limiter: the same windows, in this process."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}

    async def hit(self, limits: Sequence[tuple[str, int, int]]) -> float:
        now = time.monotonic()
        for key, limit, window in limits:
            ends, count = self._windows.get(key, (now + window, 0))
            if now >= ends:
                ends, count = now + window, 0
            count += 1
            self._windows[key] = (ends, count)
            if count > limit:
                return max(0.001, ends - now)
        return 0.0


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
