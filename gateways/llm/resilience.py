"""Per call: retries with exponential backoff and jitter that honour `Retry-After`, and a circuit breaker
per provider (tenacity and purgatory). An agent's fallback chain is `commands.llm.complete_with_fallback`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from purgatory import AsyncCircuitBreakerFactory
from purgatory.domain.model import OpenedState
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from commands.llm import LlmError, LlmProvider, LlmReply, LlmRequest


def is_retryable(error: BaseException) -> bool:
    return isinstance(error, LlmError) and error.retryable


def breakers(*, threshold: int = 5, reset_seconds: float = 30.0) -> AsyncCircuitBreakerFactory:
    """Opens a provider's circuit after `threshold` retryable failures in a row; half-opens after `reset_seconds`."""
    return AsyncCircuitBreakerFactory(
        default_threshold=threshold,
        default_ttl=reset_seconds,
        exclude=[(LlmError, lambda error: not error.retryable)],  # a bad request says nothing of the provider's health
    )


class Resilient:
    """An `LlmProvider` that retries what can be retried and stops calling a provider that keeps failing."""

    def __init__(
        self,
        provider: LlmProvider,
        circuits: AsyncCircuitBreakerFactory,
        *,
        attempts: int = 3,
        initial_wait: float = 0.5,
        max_wait: float = 20.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.name = provider.name
        self._provider = provider
        self._circuits = circuits
        self._attempts = attempts
        self._backoff = wait_exponential_jitter(multiplier=initial_wait, max=max_wait)
        self._max_wait = max_wait
        self._sleep = sleep

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, LlmError) and error.retry_after is not None:
            return min(error.retry_after, self._max_wait)
        return float(self._backoff(state))

    async def close(self) -> None:
        await self._provider.close()

    async def complete(self, request: LlmRequest) -> LlmReply:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=self._wait,
            retry=retry_if_exception(is_retryable),
            sleep=self._sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                breaker = await self._circuits.get_breaker(self.name)
                try:
                    async with breaker:
                        return await self._provider.complete(request)
                except OpenedState:
                    raise LlmError(f"{self.name} is failing; its circuit is open", retryable=False) from None
        raise AssertionError("tenacity either returns or re-raises")  # pragma: no cover


class Router:
    """Sends each request to the provider it names (`openai_compatible` is OpenAI's client with a base URL)."""

    name = "router"

    def __init__(self, providers: Mapping[str, LlmProvider]) -> None:
        self._providers = dict(providers)

    def serves(self, provider: str) -> bool:
        """Whether a request naming this provider has a provider configured to go to (a key, say)."""
        return ("openai" if provider == "openai_compatible" else provider) in self._providers

    async def close(self) -> None:
        for provider in self._providers.values():
            await provider.close()

    async def complete(self, request: LlmRequest) -> LlmReply:
        name = "openai" if request.provider == "openai_compatible" else request.provider
        provider = self._providers.get(name)
        if provider is None:
            raise LlmError(f"provider {request.provider!r} is not configured here", retryable=False)
        return await provider.complete(request)
