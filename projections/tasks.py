"""The `tasks` read model: every step of every instance, with its status, attempts and output."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from domain.workflows.instance import (
    CompensationRecorded,
    StepAttemptFailed,
    StepCompleted,
    StepDeferred,
    StepFailed,
    StepRetriedWithFeedback,
    StepSkipped,
    StepStarted,
    WorkflowInstanceStarted,
)
from projections.projection import Connection, Projection, Write, as_dicts


def started(position: int, e: WorkflowInstanceStarted) -> list[Write]:
    return [
        Write(
            "INSERT INTO tasks (instance_id, step_id, tenant_id, kind, status, updated_at)"
            " VALUES ($1, $2, $3, $4, 'pending', $5) ON CONFLICT (instance_id, step_id) DO NOTHING",
            (e.originator_id, step.id, e.metadata.tenant_id, step.kind, e.timestamp),
        )
        for step in e.definition.steps
    ]


def step_started(position: int, e: StepStarted) -> list[Write]:
    return [
        Write(
            "UPDATE tasks SET status = 'running', attempts = $3, started_at = $4, updated_at = $4"
            " WHERE instance_id = $1 AND step_id = $2",
            (e.originator_id, e.step_id, e.attempt, e.timestamp),
        )
    ]


def step_completed(position: int, e: StepCompleted) -> list[Write]:
    return [
        Write(
            "UPDATE tasks SET status = 'completed', output = $3, error = '', finished_at = $4, updated_at = $4"
            " WHERE instance_id = $1 AND step_id = $2",
            (e.originator_id, e.step_id, e.output, e.timestamp),
        )
    ]


def attempt_failed(position: int, e: StepAttemptFailed) -> list[Write]:
    return [
        Write(
            "UPDATE tasks SET status = 'pending', error = $3, updated_at = $4 WHERE instance_id = $1 AND step_id = $2",
            (e.originator_id, e.step_id, e.error, e.timestamp),
        )
    ]


def step_failed(position: int, e: StepFailed) -> list[Write]:
    return [
        Write(
            "UPDATE tasks SET status = 'failed', error = $3, finished_at = $4, updated_at = $4"
            " WHERE instance_id = $1 AND step_id = $2",
            (e.originator_id, e.step_id, e.error, e.timestamp),
        )
    ]


def step_skipped(position: int, e: StepSkipped) -> list[Write]:
    return [
        Write(
            "UPDATE tasks SET status = 'skipped', error = $3, finished_at = $4, updated_at = $4"
            " WHERE instance_id = $1 AND step_id = $2",
            (e.originator_id, e.step_id, e.reason, e.timestamp),
        )
    ]


def deferred(position: int, e: StepDeferred) -> list[Write]:
    return [
        Write(
            "UPDATE tasks SET status = 'pending', error = $3, updated_at = $4 WHERE instance_id = $1 AND step_id = $2",
            (e.originator_id, e.step_id, f"waits until {e.until.isoformat()}: {e.reason}", e.timestamp),
        )
    ]


def sent_back(position: int, e: StepRetriedWithFeedback) -> list[Write]:
    """The validated step and what follows it go back to pending; the target shows the feedback."""
    return [
        Write(
            "UPDATE tasks SET status = 'pending', output = NULL, finished_at = NULL, updated_at = $4,"
            " error = CASE WHEN step_id = $3 THEN $5 ELSE '' END"
            " WHERE instance_id = $1 AND step_id = ANY($2::text[])",
            (e.originator_id, e.reset, e.target, e.timestamp, e.feedback),
        )
    ]


def compensated(position: int, e: CompensationRecorded) -> list[Write]:
    return [
        Write(
            "UPDATE tasks SET status = 'compensated', error = $4, updated_at = $3"
            " WHERE instance_id = $1 AND step_id = $2",
            (e.originator_id, e.step_id, e.timestamp, e.error),
        )
    ]


projection = Projection(
    name="tasks",
    context="workflows",
    tables=("tasks",),
    handlers={
        WorkflowInstanceStarted: started,
        StepStarted: step_started,
        StepCompleted: step_completed,
        StepAttemptFailed: attempt_failed,
        StepFailed: step_failed,
        StepSkipped: step_skipped,
        CompensationRecorded: compensated,
        StepDeferred: deferred,
        StepRetriedWithFeedback: sent_back,
    },
)


async def list_tasks(conn: Connection, tenant_id: str, instance_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM tasks WHERE tenant_id = $1 AND instance_id = $2 ORDER BY started_at NULLS LAST, step_id",
        tenant_id,
        instance_id,
    )
    return as_dicts(rows)
