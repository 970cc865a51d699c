"""The LLM port: one chat completion, whatever the provider behind it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import msgspec

from domain.agents.agent_run import ChatMessage


class LlmRequest(msgspec.Struct, frozen=True, kw_only=True):
    provider: str
    model: str
    messages: list[ChatMessage]
    temperature: float = 0.2
    max_tokens: int = 1024
    json_output: bool = False
    stream: bool = False
    base_url: str | None = None  # a per-agent override of the provider's endpoint


class LlmReply(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    tokens_in: int
    tokens_out: int
    latency_ms: int
    request_id: str
    provider: str
    model: str


class LlmError(Exception):
    """A call that failed; `retryable` for 429, 5xx, timeouts and lost connections."""

    def __init__(
        self, message: str, *, retryable: bool, retry_after: float | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status


class LlmProvider(Protocol):
    """A chat completion endpoint."""

    name: str

    async def complete(self, request: LlmRequest) -> LlmReply:
        """The reply, its token usage and latency; raises `LlmError`."""
        ...

    async def close(self) -> None:
        """Releases the provider's connections."""
        ...


async def complete_with_fallback(provider: LlmProvider, chain: Sequence[LlmRequest]) -> tuple[LlmReply, list[LlmError]]:
    """Tries each request of the chain (the agent's provider, then its fallbacks) until one answers."""
    failures: list[LlmError] = []
    for request in chain:
        try:
            return await provider.complete(request), failures
        except LlmError as error:
            failures.append(error)
    raise failures[-1] if failures else LlmError("no provider to call", retryable=False)
