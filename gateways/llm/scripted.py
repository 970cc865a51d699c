"""A deterministic provider for the demo and tests: replies chosen by the prompt, usage counted in words.

It also plays an `llm_judge` deterministically: asked for JSON with a judge's prompt, it scores the share of
the rubric's double-quoted phrases that the output contains (1 when the rubric quotes none).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping

from commands.judge_prompt import rubric_and_output
from commands.llm import LlmReply, LlmRequest

QUOTED = re.compile(r'"([^"]+)"')


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
        judged = rubric_and_output(prompt) if request.json_output else None
        if text is None and judged is not None:
            text = scripted_verdict(*judged)
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


def scripted_verdict(rubric: str, output: str) -> str:
    """A judge's reply: the share of the rubric's quoted phrases found in the output, naming the missing ones."""
    wanted = list(dict.fromkeys(QUOTED.findall(rubric)))
    missing = [phrase for phrase in wanted if phrase.casefold() not in output.casefold()]
    score = round(1 - len(missing) / len(wanted), 4) if wanted else 1.0
    reason = "missing " + ", ".join(repr(p) for p in missing) if missing else "every quoted phrase is there"
    return json.dumps({"score": score, "reason": f"Scripted judge: {reason}."})
