"""Anthropic messages through the official SDK."""

from __future__ import annotations

import time
from typing import Any

import anthropic

from commands.llm import LlmError, LlmReply, LlmRequest
from gateways.llm.clients import ClientsByBaseUrl
from gateways.llm.errors import from_status

# Anthropic's messages API has no JSON mode: the instruction is the documented way to ask for JSON only.
JSON_ONLY = "Answer with one JSON object and nothing else: no prose, no code fences."


class AnthropicMessages:
    name = "anthropic"

    def __init__(self, *, api_key: str, base_url: str | None = None, timeout: float = 60.0) -> None:
        # Retries are ours (with the circuit breaker), not the SDK's.
        self._clients = ClientsByBaseUrl(
            lambda url: anthropic.AsyncAnthropic(
                api_key=api_key,
                base_url=url,
                timeout=timeout,
                max_retries=0,
                http_client=anthropic.DefaultAioHttpClient(timeout=timeout),
            ),
            base_url,
        )

    async def close(self) -> None:
        await self._clients.close()

    async def complete(self, request: LlmRequest) -> LlmReply:
        client = self._clients.get(request.base_url)
        system = "\n\n".join(
            [m.content for m in request.messages if m.role == "system"] + ([JSON_ONLY] if request.json_output else [])
        )
        arguments: dict[str, Any] = {
            "model": request.model,
            "max_tokens": request.max_tokens,
            # anthropic 2.x no longer takes a temperature on messages.create: the agent's is not sent.
            "messages": [{"role": m.role, "content": m.content} for m in request.messages if m.role != "system"],
        }
        if system:
            arguments["system"] = system
        started = time.perf_counter()
        try:
            if request.stream:
                async with client.messages.stream(**arguments) as stream:
                    async for _ in stream.text_stream:
                        pass
                    message = await stream.get_final_message()
            else:
                message = await client.messages.create(**arguments)
        except anthropic.APIStatusError as error:
            raise from_status(self.name, error.status_code, error.message, error.response.headers) from None
        except (anthropic.APITimeoutError, anthropic.APIConnectionError) as error:
            raise LlmError(f"{self.name}: {type(error).__name__}", retryable=True) from None
        text = "".join(str(getattr(block, "text", "")) for block in message.content if block.type == "text")
        return LlmReply(
            text=text,
            tokens_in=message.usage.input_tokens,
            tokens_out=message.usage.output_tokens,
            latency_ms=round((time.perf_counter() - started) * 1000),
            request_id=message.id,
            provider=self.name,
            model=message.model or request.model,
        )
