"""The official OpenAI and Anthropic SDKs, driven end to end against a local server in their wire formats."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from commands.llm import LlmError, LlmProvider, LlmRequest, complete_with_fallback
from domain.agents.agent_run import ChatMessage
from gateways.llm.anthropic_messages import AnthropicMessages
from gateways.llm.openai_chat import OpenAIChat
from gateways.llm.resilience import Resilient, Router, breakers
from gateways.llm.scripted import ScriptedProvider
from tests.gateways.fake_llm import FakeLlmServer

MESSAGES = [ChatMessage("system", "Be brief."), ChatMessage("user", "Say hello to the team")]


OPENED: list[LlmProvider] = []


@pytest.fixture
async def server() -> AsyncIterator[FakeLlmServer]:
    made = FakeLlmServer()
    yield made
    while OPENED:  # the SDK clients hold connections: close them before the loop ends
        await OPENED.pop().close()
    made.stop()


def providers(server: FakeLlmServer) -> dict[str, LlmProvider]:
    made: dict[str, LlmProvider] = {
        "openai": OpenAIChat(api_key="test-key", base_url=f"{server.url}/v1", timeout=5),
        "anthropic": AnthropicMessages(api_key="test-key", base_url=server.url, timeout=5),
    }
    OPENED.extend(made.values())
    return made


def request(provider: str, *, stream: bool = False, model: str = "model-a") -> LlmRequest:
    return LlmRequest(provider=provider, model=model, messages=MESSAGES, max_tokens=50, stream=stream)


@pytest.mark.parametrize("name", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
async def test_a_completion_returns_text_usage_and_request_id(server: FakeLlmServer, name: str, stream: bool) -> None:
    reply = await providers(server)[name].complete(request(name, stream=stream))
    assert reply.text == "Hello from model-a"
    assert reply.tokens_in == (7 if name == "openai" else 5)  # the words of the messages (Anthropic: system apart)
    assert reply.tokens_out == 3
    assert reply.request_id in {"chatcmpl-fake", "msg_fake"}
    assert reply.provider == name
    path, body = server.requests[-1]
    assert path.endswith("/chat/completions" if name == "openai" else "/messages")
    if name == "anthropic":
        assert body["system"] == "Be brief."
        assert [m["role"] for m in body["messages"]] == ["user"]


@pytest.mark.parametrize("name", ["openai", "anthropic"])
async def test_429_is_retryable_and_carries_retry_after(server: FakeLlmServer, name: str) -> None:
    server.fail_next(429, retry_after=2)
    with pytest.raises(LlmError) as failure:
        await providers(server)[name].complete(request(name))
    assert failure.value.retryable
    assert failure.value.retry_after == 2
    assert failure.value.status == 429


@pytest.mark.parametrize("name", ["openai", "anthropic"])
async def test_a_bad_request_is_not_retried(server: FakeLlmServer, name: str) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    resilient = Resilient(providers(server)[name], breakers(), attempts=3, sleep=sleep)
    server.fail_next(400, times=3)
    with pytest.raises(LlmError) as failure:
        await resilient.complete(request(name))
    assert not failure.value.retryable
    assert len(server.requests) == 1
    assert slept == []


@pytest.mark.parametrize("name", ["openai", "anthropic"])
async def test_retries_back_off_honouring_retry_after_then_succeed(server: FakeLlmServer, name: str) -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    resilient = Resilient(providers(server)[name], breakers(), attempts=3, initial_wait=0.5, sleep=sleep)
    server.fail_next(429, retry_after=3)
    server.fail_next(500)
    reply = await resilient.complete(request(name))
    assert reply.text == "Hello from model-a"
    assert len(server.requests) == 3
    assert slept[0] == 3  # Retry-After wins over the backoff
    assert 0 < slept[1] <= 20


async def test_a_failing_provider_opens_its_circuit_and_is_not_called(server: FakeLlmServer) -> None:
    async def sleep(seconds: float) -> None:
        return None

    circuits = breakers(threshold=3, reset_seconds=60)
    resilient = Resilient(providers(server)["openai"], circuits, attempts=1, sleep=sleep)
    server.fail_next(503, times=3)
    for _ in range(3):
        with pytest.raises(LlmError):
            await resilient.complete(request("openai"))
    calls = len(server.requests)
    with pytest.raises(LlmError, match="circuit is open"):
        await resilient.complete(request("openai"))
    assert len(server.requests) == calls  # failed fast, without a call


async def test_a_fallback_chain_answers_when_the_first_provider_fails(server: FakeLlmServer) -> None:
    async def sleep(seconds: float) -> None:
        return None

    router = Router({name: Resilient(p, breakers(), attempts=2, sleep=sleep) for name, p in providers(server).items()})
    server.fail_next(500, times=2)
    reply, failures = await complete_with_fallback(
        router, [request("openai", model="primary"), request("anthropic", model="backup")]
    )
    assert reply.provider == "anthropic"
    assert reply.text == "Hello from backup"
    assert [f.status for f in failures] == [500]


async def test_an_openai_compatible_server_is_reached_through_its_base_url(server: FakeLlmServer) -> None:
    router = Router({"openai": OpenAIChat(api_key="unused", base_url="http://127.0.0.1:9/v1", timeout=5)})
    OPENED.append(router)
    compatible = LlmRequest(
        provider="openai_compatible", model="llama3", messages=MESSAGES, base_url=f"{server.url}/v1"
    )
    reply = await router.complete(compatible)
    assert reply.text == "Hello from llama3"


async def test_the_scripted_provider_is_deterministic() -> None:
    scripted = ScriptedProvider({"hello": "Hi all!"})
    first = await scripted.complete(request("scripted"))
    again = await scripted.complete(request("scripted"))
    assert first == again
    assert first.text == "Hi all!"
    assert (first.tokens_in, first.tokens_out) == (7, 2)


@pytest.mark.parametrize("name", ["openai", "anthropic"])
async def test_a_call_past_its_timeout_is_retryable(server: FakeLlmServer, name: str) -> None:
    slow: LlmProvider = (
        OpenAIChat(api_key="test-key", base_url=f"{server.url}/v1", timeout=0.2)
        if name == "openai"
        else AnthropicMessages(api_key="test-key", base_url=server.url, timeout=0.2)
    )
    OPENED.append(slow)
    server.delay = 1.0
    with pytest.raises(LlmError) as raised:
        await slow.complete(request(name))
    assert raised.value.retryable
