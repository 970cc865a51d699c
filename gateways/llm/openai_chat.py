"""OpenAI chat completions through the official SDK; any OpenAI-compatible server with `base_url`."""

from __future__ import annotations

import time
from typing import Any

import httpx
import msgspec
import openai

from commands.llm import LlmError, LlmReply, LlmRequest
from gateways.llm.clients import ClientsByBaseUrl
from gateways.llm.errors import from_status


class Message(msgspec.Struct):
    content: str | None = None


class Choice(msgspec.Struct):
    message: Message


class Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ChatCompletion(msgspec.Struct):
    """The fields of a chat completion the platform reads."""

    id: str = ""
    model: str = ""
    choices: list[Choice] = msgspec.field(default_factory=list)
    usage: Usage | None = None


class OpenAIChat:
    name = "openai"

    def __init__(self, *, api_key: str, base_url: str | None = None, timeout: float = 60.0) -> None:
        # Retries are ours (with the circuit breaker), not the SDK's. The SDK's aiohttp transport (its
        # `aiohttp` extra, documented "for improved concurrency performance") costs far less CPU per call than
        # its default one: 3-step workflows/s on the embedded bus went from ~80 to ~110 (tests/bench/engine.py).
        self._clients = ClientsByBaseUrl(
            lambda url: openai.AsyncOpenAI(
                api_key=api_key,
                base_url=url,
                timeout=timeout,
                max_retries=0,
                http_client=openai.DefaultAioHttpClient(timeout=timeout),
            ),
            base_url,
        )

    async def close(self) -> None:
        await self._clients.close()

    async def complete(self, request: LlmRequest) -> LlmReply:
        client = self._clients.get(request.base_url)
        arguments: dict[str, Any] = {
            "model": request.model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if request.json_output:
            arguments["response_format"] = {"type": "json_object"}
        started = time.perf_counter()
        try:
            if request.stream:
                return await self._streamed(client, arguments, started)
            # The SDK's documented raw request (`client.post`): the same client, auth, timeouts and errors,
            # without its per-call model transform and parsing, a third of its CPU per call (measured in
            # tests/bench/engine.py); the body is the wire format of `chat.completions.create`.
            raw = await client.post("/chat/completions", body=arguments, cast_to=httpx.Response)
            response = msgspec.json.decode(raw.content, type=ChatCompletion)
        except openai.APIStatusError as error:
            raise from_status(self.name, error.status_code, error.message, error.response.headers) from None
        except (openai.APITimeoutError, openai.APIConnectionError) as error:
            raise LlmError(f"{self.name}: {type(error).__name__}", retryable=True) from None
        except msgspec.DecodeError as error:
            raise LlmError(f"{self.name}: the reply is not a chat completion: {error}", retryable=True) from None
        if not response.choices:
            raise LlmError(f"{self.name}: the reply has no choices", retryable=True)
        usage = response.usage
        return LlmReply(
            text=response.choices[0].message.content or "",
            tokens_in=usage.prompt_tokens if usage else 0,
            tokens_out=usage.completion_tokens if usage else 0,
            latency_ms=round((time.perf_counter() - started) * 1000),
            request_id=response.id,
            provider=self.name,
            model=response.model or request.model,
        )

    async def _streamed(self, client: openai.AsyncOpenAI, arguments: dict[str, Any], started: float) -> LlmReply:
        parts: list[str] = []
        tokens_in = tokens_out = 0
        request_id, model = "", arguments["model"]
        stream = await client.chat.completions.create(**arguments, stream=True, stream_options={"include_usage": True})
        async for chunk in stream:
            request_id, model = chunk.id or request_id, chunk.model or model
            for choice in chunk.choices:
                if choice.delta.content:
                    parts.append(choice.delta.content)
            if chunk.usage is not None:
                tokens_in, tokens_out = chunk.usage.prompt_tokens, chunk.usage.completion_tokens
        return LlmReply(
            text="".join(parts),
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            latency_ms=round((time.perf_counter() - started) * 1000),
            request_id=request_id,
            provider=self.name,
            model=model,
        )
