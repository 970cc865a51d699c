"""A deterministic provider for the demo and tests: replies chosen by the prompt, usage counted in words."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from commands.llm import LlmReply, LlmRequest


class ScriptedProvider:
    """Answers from `script` (keyed by a phrase the last user message contains), else a stable default."""

    name = "scripted"

    def __init__(self, script: Mapping[str, str] | None = None) -> None:
        self._script = dict(script or {})

    async def close(self) -> None:
        return None

    async def complete(self, request: LlmRequest) -> LlmReply:
        prompt = request.messages[-1].content if request.messages else ""
        text = next((reply for phrase, reply in self._script.items() if phrase in prompt), None)
        if text is None:
            text = f"Scripted reply to: {prompt[:200]}"
        digest = hashlib.sha256(("\n".join(m.content for m in request.messages) + text).encode()).hexdigest()
        return LlmReply(
            text=text,
            tokens_in=sum(len(m.content.split()) for m in request.messages),
            tokens_out=len(text.split()),
            latency_ms=0,
            request_id=f"scripted-{digest[:16]}",
            provider=self.name,
            model=request.model,
        )
