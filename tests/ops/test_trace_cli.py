"""`aiwp trace` as an auditor runs it on a finished support-triage instance: every event, linked, totalled."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest

from domain.envelope import event_id_of
from tests.ops.demo_instance import DemoInstance, aiwp, demo_instance, document

pytestmark = pytest.mark.integration
__all__ = ["demo_instance"]  # the fixture, used by name


async def positions_of_the_instance_and_its_children(demo: DemoInstance) -> set[int]:
    """Straight from the events table: the instance's stream, and every run and validation stream (the schema
    holds this one instance only)."""
    conn = await demo.connect()
    try:
        rows = await conn.fetch(
            "SELECT e.notification_id FROM aiwp_events e JOIN aiwp_events first"
            " ON first.originator_id = e.originator_id AND first.originator_version = 1"
            " WHERE e.originator_id = $1 OR first.topic LIKE '%:AgentRunRequested'"
            " OR first.topic LIKE '%:ValidationRequested'",
            demo.instance_id,
        )
    finally:
        await conn.close()
    return {row["notification_id"] for row in rows}


def reaches_the_instance(trace: dict[str, Any], child: dict[str, Any]) -> bool:
    """Cause by cause from the child's first event; an event of another child stands for that child's request."""
    by_id = {e["event_id"]: e for e in trace["events"]}
    first = {e["stream_id"]: e for e in sorted(trace["events"], key=lambda e: e["position"]) if e["version"] == 1}
    current = first[child["stream_id"]]
    for _ in range(len(trace["events"])):
        cause = current["causation_id"]
        if cause == trace["instance_id"]:
            return True
        if cause not in by_id:
            return False
        if by_id[cause]["stream_id"] == trace["instance_id"]:
            return True
        current = first[by_id[cause]["stream_id"]]
    return False


async def test_trace_lists_every_event_of_the_instance_runs_and_validations_linked_and_totalled(
    demo_instance: DemoInstance,
) -> None:
    trace = document(aiwp("trace", str(demo_instance.instance_id), "--json", environ=demo_instance.env()))

    events = trace["events"]
    assert {e["position"] for e in events} == await positions_of_the_instance_and_its_children(demo_instance)
    assert [e["position"] for e in events] == sorted(e["position"] for e in events)
    assert all(e["event_id"] == str(event_id_of(UUID(e["stream_id"]), e["version"])) for e in events)
    assert trace["status"] == "completed"
    assert sorted(c["label"] for c in trace["children"]) == [
        "run classify#1",
        "run draft#1",
        "run draft#2",
        "validation check#1",
        "validation check#2",
    ]
    for child in trace["children"]:
        assert reaches_the_instance(trace, child), child["label"]
        assert child["reaches_instance"], child["label"]

    answers = [e for e in events if e["type"] in ("AgentRunSucceeded", "JudgeConsulted")]
    totals = trace["totals"]
    assert len(answers) == 3
    assert totals["tokens_in"] == sum(e["data"]["tokens_in"] for e in answers) > 0
    assert totals["tokens_out"] == sum(e["data"]["tokens_out"] for e in answers) > 0
    assert Decimal(totals["cost"]) == sum(Decimal(e["data"]["cost"]) for e in answers) > 0
    assert totals["runs"] == 3
    assert totals["validations"] == 2
    assert totals["validations_passed"] == 1
    assert totals["wall_seconds"] >= max(totals["step_seconds"].values())
    assert [a["decision"] for a in trace["approvals"]] == ["approved"]
    assert trace["approvals"][0]["by"] == "demo-approver"
    outcomes = [(s["step"], s["attempt"], s["outcome"]) for s in trace["steps"]]
    assert ("check", 1, "sent back") in outcomes
    assert ("draft", 2, "completed") in outcomes
    assert {a["actor"] for a in trace["actors"]} >= {"demo-user", "orchestrator", "agent-worker", "demo-approver"}


async def test_the_table_names_each_step_and_the_totals(demo_instance: DemoInstance) -> None:
    result = aiwp("trace", str(demo_instance.instance_id), environ=demo_instance.env())
    assert result.returncode == 0, result.stderr
    for step in ("classify", "draft", "check", "approve", "send"):
        assert step in result.stdout, step
    assert "run draft#2" in result.stdout
    assert "approved by demo-approver" in result.stdout
    assert "tokens" in result.stdout


@pytest.mark.parametrize(
    ("argument", "says"),
    [
        ("not-a-uuid", "is not an instance id"),
        ("6f1c1b3e-8a52-4d0f-9c1e-2b7d4f5a9e01", "no workflow instance"),  # an id no instance has
        ("run", "is not a workflow instance"),
    ],
)
async def test_bad_input_exits_2_with_one_line(demo_instance: DemoInstance, argument: str, says: str) -> None:
    environ = demo_instance.env()
    if argument == "run":
        trace = document(aiwp("trace", str(demo_instance.instance_id), "--json", environ=environ))
        argument = trace["children"][0]["stream_id"]
    result = aiwp("trace", argument, environ=environ)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert says in result.stderr
    assert "Traceback" not in result.stderr
