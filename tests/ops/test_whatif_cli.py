"""`aiwp whatif`: a recorded run's call made again through the OpenAI SDK against the local LLM server, scored
with the rules that validated the run — and nothing written anywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from commands.unit_of_work import new_aggregate_id
from domain.agents.agent_run import AgentRun
from tests.gateways.fake_llm import FakeLlmServer
from tests.ops.demo_instance import TENANT, DemoInstance, aiwp, demo_instance, document
from tests.strategies import Clock

pytestmark = pytest.mark.integration
__all__ = ["demo_instance"]  # the fixture, used by name


def openai_env(demo: DemoInstance, server: FakeLlmServer) -> dict[str, str]:
    return demo.env(AIWP_OPENAI_BASE_URL=f"{server.url}/v1", OPENAI_API_KEY="test-key")


def run_of(demo: DemoInstance, step: str, attempt: int) -> UUID:
    """The run the orchestrator asked for that step's attempt (its id is derived, as the orchestrator derives it)."""
    return new_aggregate_id(Clock(tenant_id=TENANT).ctx(), AgentRun, f"{demo.instance_id}/{step}/{attempt}")


async def stored(demo: DemoInstance, stream_id: UUID) -> tuple[list[Any], int, int]:
    """The stream's rows as stored, the log's head and its size."""
    conn = await demo.connect()
    try:
        rows = await conn.fetch(
            "SELECT originator_id, originator_version, topic, state, notification_id FROM aiwp_events"
            " WHERE originator_id = $1 ORDER BY originator_version",
            stream_id,
        )
        head = await conn.fetchval("SELECT max(notification_id) FROM aiwp_events")
        size = await conn.fetchval("SELECT count(*) FROM aiwp_events")
    finally:
        await conn.close()
    return [tuple(row) for row in rows], head, size


async def test_whatif_reruns_the_recorded_messages_on_another_model_and_scores_both_without_writing(
    demo_instance: DemoInstance, llm_server: FakeLlmServer
) -> None:
    run_id = run_of(demo_instance, "draft", 2)
    before = await stored(demo_instance, run_id)
    environ = openai_env(demo_instance, llm_server)

    compared = document(
        aiwp("whatif", str(run_id), "--provider", "openai", "--model", "gpt-4o-mini", "--json", environ=environ)
    )

    assert await stored(demo_instance, run_id) == before  # byte for byte, and the log's head did not move
    [(path, body)] = llm_server.requests
    assert path == "/v1/chat/completions"
    assert body["model"] == "gpt-4o-mini"
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert "A reviewer rejected the previous answer" in body["messages"][-1]["content"]  # the recorded prompt
    original, other = compared["original"], compared["whatif"]
    assert original["provider"] == "scripted"
    assert "Ref: INV-2041" in original["output"]
    assert (original["score"], original["passed"], original["recorded_score"]) == (1.0, True, 1.0)
    assert other["output"] == "Hello from gpt-4o-mini"
    assert other["passed"] is False
    assert other["score"] < original["score"]
    assert {r["rule_id"]: r["passed"] for r in other["results"]}["reference"] is False
    assert other["tokens_in"] > 0
    assert float(other["cost"]) > 0
    assert compared["rules"]["from"] == "validation"
    assert compared["rules"]["threshold"] == 0.8
    assert "+Hello from gpt-4o-mini" in compared["diff"]
    assert "-Hello Ada" in compared["diff"]
    assert compared["written"] == "nothing"


async def test_a_prompt_file_replaces_the_prompt_and_the_table_shows_both_sides(
    demo_instance: DemoInstance, llm_server: FakeLlmServer, tmp_path: Path
) -> None:
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("Write two friendly lines to Ada. End with Ref: INV-2041")
    llm_server.reply_next("Hi Ada, we refunded the second charge on your March invoice. Sorry! Ref: INV-2041")
    run_id = run_of(demo_instance, "draft", 1)
    environ = openai_env(demo_instance, llm_server)

    result = aiwp(
        "whatif",
        str(run_id),
        "--provider",
        "openai",
        "--model",
        "gpt-4o",
        "--prompt-file",
        str(prompt),
        "--rules",
        "reply-quality",
        environ=environ,
    )

    assert result.returncode == 0, result.stderr
    [(_, body)] = llm_server.requests
    assert body["messages"][-1] == {"role": "user", "content": prompt.read_text()}
    assert body["messages"][0]["role"] == "system"
    for shown in ("original", "what-if", "scripted/scripted-1", "openai/gpt-4o", "rule reference", "output diff"):
        assert shown in result.stdout, shown
    assert "scored with rule set 'reply-quality'" in result.stdout
    assert "nothing was written" in result.stdout


async def test_the_same_model_again_gives_the_same_output_and_score(demo_instance: DemoInstance) -> None:
    compared = document(aiwp("whatif", str(run_of(demo_instance, "draft", 1)), "--json", environ=demo_instance.env()))
    assert compared["whatif"]["output"] == compared["original"]["output"]
    assert compared["whatif"]["score"] == compared["original"]["score"] == compared["original"]["recorded_score"]
    assert compared["original"]["passed"] is False
    assert compared["diff"] == ""


async def test_a_failed_call_exits_1_with_one_line(demo_instance: DemoInstance, llm_server: FakeLlmServer) -> None:
    llm_server.fail_next(400)
    run_id = run_of(demo_instance, "draft", 2)
    result = aiwp(
        "whatif",
        str(run_id),
        "--provider",
        "openai",
        "--model",
        "gpt-4o",
        environ=openai_env(demo_instance, llm_server),
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "the call to openai/gpt-4o failed" in result.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["not-a-uuid"], "is not a run id"),
        ([str(uuid4())], "no agent run"),
        (["INSTANCE"], "is not an agent run"),
        (["RUN", "--prompt-file", "/nonexistent/prompt.txt"], "cannot read --prompt-file /nonexistent/prompt.txt"),
        (["RUN", "--provider", "mistral", "--model", "m"], "unknown provider 'mistral'"),
        (
            ["RUN", "--provider", "anthropic", "--model", "claude-3-5-haiku-latest"],
            "provider 'anthropic' has no API key",
        ),
        (["RUN", "--provider", "openai"], "needs --model"),
        (["RUN", "--rules", "no-such-rules"], "no rule set named 'no-such-rules'"),
    ],
)
async def test_bad_input_exits_2_with_one_line(demo_instance: DemoInstance, args: list[str], says: str) -> None:
    replaced = {"RUN": str(run_of(demo_instance, "draft", 2)), "INSTANCE": str(demo_instance.instance_id)}
    result = aiwp("whatif", *[replaced.get(a, a) for a in args], environ=demo_instance.env())
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert says in result.stderr
    assert "Traceback" not in result.stderr
