"""The scripted provider as a judge: deterministic verdicts in the judge's reply format, scripts first."""

from __future__ import annotations

import json

from commands.judge_prompt import judge_messages
from commands.llm import LlmRequest
from domain.validation.judge import JudgeReply, parse_judge_reply
from gateways.llm.scripted import ScriptedProvider


def judge_request(rubric: str, output: str, *, json_output: bool = True) -> LlmRequest:
    return LlmRequest(
        provider="scripted", model="judge-1", messages=judge_messages("", rubric, output), json_output=json_output
    )


async def test_the_scripted_judge_scores_the_share_of_quoted_phrases_the_output_contains() -> None:
    scripted = ScriptedProvider()
    rubric = 'Mentions "refund" and "sorry" and "order number".'
    reply = await scripted.complete(judge_request(rubric, "Sorry! Your refund is on its way."))
    parsed = parse_judge_reply(reply.text)
    assert isinstance(parsed, JudgeReply)
    assert parsed == JudgeReply(score=0.6667, reason="Scripted judge: missing 'order number'.")
    assert reply == await scripted.complete(judge_request(rubric, "Sorry! Your refund is on its way."))


async def test_a_rubric_without_quotes_passes_and_a_script_still_wins() -> None:
    unquoted = await ScriptedProvider().complete(judge_request("Be kind.", "anything"))
    assert json.loads(unquoted.text)["score"] == 1.0
    scripted = await ScriptedProvider({"anything": "no JSON here"}).complete(judge_request("Be kind.", "anything"))
    assert scripted.text == "no JSON here"


async def test_without_json_output_it_answers_as_before() -> None:
    reply = await ScriptedProvider().complete(judge_request("Be kind.", "x", json_output=False))
    assert reply.text.startswith("Scripted reply to: <rubric>")
