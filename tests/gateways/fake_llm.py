"""A local HTTP server that speaks the OpenAI and Anthropic wire formats, streaming included.

Tests queue failures (`fail_next(status, retry_after)`), replies (`reply_next(text)`) and delays; otherwise it
answers "Hello from <model>" with word-count usage. It records every request it received.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Server(ThreadingHTTPServer):
    request_queue_size = 1024  # a thousand clients connect at once in the engine benchmark
    daemon_threads = True


class FakeLlmServer:
    __test__ = False

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.failures: deque[tuple[int, float | None]] = deque()
        self.replies: deque[str] = deque()
        self.delay = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"{}")
                server.requests.append((self.path, body))
                if server.delay:
                    time.sleep(server.delay)
                if server.failures:
                    status, retry_after = server.failures.popleft()
                    self._json(status, {"error": {"message": "injected failure", "type": "server_error"}}, retry_after)
                elif self.path.endswith("/chat/completions"):
                    self._openai(body)
                elif self.path.endswith("/messages"):
                    self._anthropic(body)
                else:
                    self._json(404, {"error": {"message": "no such endpoint"}})

            def _reply_text(self, body: dict[str, Any]) -> tuple[str, int]:
                text = server.replies.popleft() if server.replies else f"Hello from {body.get('model', '?')}"
                words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
                return text, words

            def _openai(self, body: dict[str, Any]) -> None:
                text, words = self._reply_text(body)
                usage = {"prompt_tokens": words, "completion_tokens": len(text.split()), "total_tokens": words + 3}
                base = {"id": "chatcmpl-fake", "created": 0, "model": body["model"]}
                if not body.get("stream"):
                    message = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    self._json(200, base | {"object": "chat.completion", "choices": [message], "usage": usage})
                    return
                events = [
                    base
                    | {
                        "object": "chat.completion.chunk",
                        "choices": [
                            {
                                "index": 0,
                                "delta": {"content": word + (" " if i < len(text.split()) - 1 else "")},
                                "finish_reason": None,
                            }
                        ],
                    }
                    for i, word in enumerate(text.split())
                ]
                events.append(base | {"object": "chat.completion.chunk", "choices": [], "usage": usage})
                self._sse([(None, e) for e in events] + [(None, "[DONE]")])

            def _anthropic(self, body: dict[str, Any]) -> None:
                text, words = self._reply_text(body)
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
                    self._json(200, message | {"content": content, "usage": usage})
                    return
                start = message | {
                    "content": [],
                    "stop_reason": None,
                    "usage": {"input_tokens": words, "output_tokens": 1},
                }
                self._sse(
                    [
                        ("message_start", {"type": "message_start", "message": start}),
                        (
                            "content_block_start",
                            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
                        ),
                        *[
                            (
                                "content_block_delta",
                                {
                                    "type": "content_block_delta",
                                    "index": 0,
                                    "delta": {"type": "text_delta", "text": piece},
                                },
                            )
                            for piece in (text[:5], text[5:])
                        ],
                        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
                        (
                            "message_delta",
                            {
                                "type": "message_delta",
                                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                "usage": {"output_tokens": len(text.split())},
                            },
                        ),
                        ("message_stop", {"type": "message_stop"}),
                    ]
                )

            def _json(self, status: int, payload: Any, retry_after: float | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("request-id", "req-fake")
                if retry_after is not None:
                    self.send_header("retry-after", str(retry_after))
                self.end_headers()
                self.wfile.write(data)

            def _sse(self, events: list[tuple[str | None, Any]]) -> None:
                chunks = []
                for name, payload in events:
                    text = payload if isinstance(payload, str) else json.dumps(payload)
                    chunks.append((f"event: {name}\n" if name else "") + f"data: {text}\n\n")
                data = "".join(chunks).encode()
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return None

        self._server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def fail_next(self, status: int, *, times: int = 1, retry_after: float | None = None) -> None:
        self.failures.extend([(status, retry_after)] * times)

    def reply_next(self, text: str, *, times: int = 1) -> None:
        self.replies.extend([text] * times)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
