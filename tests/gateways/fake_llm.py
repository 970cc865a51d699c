"""A local HTTP server that speaks the OpenAI and Anthropic wire formats, streaming included.

Tests queue failures (`fail_next(status, retry_after)`), replies (`reply_next(text)`) and delays; otherwise it
answers "Hello from <model>" with word-count usage. It records every request it received.

It is an ASGI app under uvicorn (asyncio), in a thread of the test's process — or, for the benchmarks, in a
process of its own (`python -m tests.gateways.fake_llm DELAY`), where a thousand clients at once cost it
little more than its delay.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Reply = tuple[int, str, bytes, dict[str, str]]  # status, content type, body, extra headers


class QuietServer(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Iterator[None]:  # it runs in a thread, or is killed with its process
        yield


class FakeLlmServer:
    __test__ = False

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.failures: deque[tuple[int, float | None]] = deque()
        self.replies: deque[str] = deque()
        self.delay = 0.0
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        config = uvicorn.Config(
            self.app, log_level="warning", lifespan="off", access_log=False, backlog=2048, interface="asgi3"
        )
        self._server = QuietServer(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [listener]}, daemon=True)
        self._thread.start()
        while not self._server.started:
            threading.Event().wait(0.01)

    def fail_next(self, status: int, *, times: int = 1, retry_after: float | None = None) -> None:
        self.failures.extend([(status, retry_after)] * times)

    def reply_next(self, text: str, *, times: int = 1) -> None:
        self.replies.extend([text] * times)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    async def app(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = json.loads(b"".join(chunks) or b"{}")
        path = scope["path"]
        self.requests.append((path, body))
        if self.delay:
            await asyncio.sleep(self.delay)
        status, content_type, data, headers = self.answer(path, body)
        head = [(b"content-type", content_type.encode()), (b"request-id", b"req-fake")]
        head += [(name.encode(), value.encode()) for name, value in headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": data})

    def answer(self, path: str, body: dict[str, Any]) -> Reply:
        if self.failures:
            status, retry_after = self.failures.popleft()
            extra = {"retry-after": str(retry_after)} if retry_after is not None else {}
            return json_reply(status, {"error": {"message": "injected failure", "type": "server_error"}}, extra)
        if path.endswith("/chat/completions"):
            return self.openai(body)
        if path.endswith("/messages"):
            return self.anthropic(body)
        return json_reply(404, {"error": {"message": "no such endpoint"}})

    def reply_text(self, body: dict[str, Any]) -> tuple[str, int]:
        text = self.replies.popleft() if self.replies else f"Hello from {body.get('model', '?')}"
        words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        return text, words

    def openai(self, body: dict[str, Any]) -> Reply:
        text, words = self.reply_text(body)
        usage = {"prompt_tokens": words, "completion_tokens": len(text.split()), "total_tokens": words + 3}
        base = {"id": "chatcmpl-fake", "created": 0, "model": body["model"]}
        if not body.get("stream"):
            message = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            return json_reply(200, base | {"object": "chat.completion", "choices": [message], "usage": usage})
        pieces = text.split()
        events: list[tuple[str | None, Any]] = [
            (
                None,
                base
                | {
                    "object": "chat.completion.chunk",
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"content": word + (" " if i < len(pieces) - 1 else "")},
                            "finish_reason": None,
                        }
                    ],
                },
            )
            for i, word in enumerate(pieces)
        ]
        events.append((None, base | {"object": "chat.completion.chunk", "choices": [], "usage": usage}))
        return sse_reply([*events, (None, "[DONE]")])

    def anthropic(self, body: dict[str, Any]) -> Reply:
        text, words = self.reply_text(body)
        message = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "stop_reason": "end_turn",
            "stop_sequence": None,
        }
        if not body.get("stream"):
            content = [{"type": "text", "text": text}]
            usage = {"input_tokens": words, "output_tokens": len(text.split())}
            return json_reply(200, message | {"content": content, "usage": usage})
        start = message | {"content": [], "stop_reason": None, "usage": {"input_tokens": words, "output_tokens": 1}}
        block = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        deltas = [
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}},
            )
            for p in (text[:5], text[5:])
        ]
        ending = {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": len(text.split())},
        }
        return sse_reply(
            [
                ("message_start", {"type": "message_start", "message": start}),
                ("content_block_start", block),
                *deltas,
                ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                ("message_delta", ending),
                ("message_stop", {"type": "message_stop"}),
            ]
        )


def json_reply(status: int, payload: Any, headers: dict[str, str] | None = None) -> Reply:
    return status, "application/json", json.dumps(payload).encode(), headers or {}


def sse_reply(events: list[tuple[str | None, Any]]) -> Reply:
    chunks = []
    for name, payload in events:
        text = payload if isinstance(payload, str) else json.dumps(payload)
        chunks.append((f"event: {name}\n" if name else "") + f"data: {text}\n\n")
    return 200, "text/event-stream", "".join(chunks).encode(), {}


if __name__ == "__main__":  # a server of its own process, for the benchmarks: `python -m tests.gateways.fake_llm 0.2`
    import sys

    served = FakeLlmServer()
    served.delay = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
    print(served.url, flush=True)
    threading.Event().wait()
