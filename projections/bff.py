"""The BFF's read routes: the dashboard and the complete view of one workflow instance, each in one call."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import asyncpg
import msgspec
from litestar import Request, get
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from projections import (
    executions,
    saga_compensations,
    tasks,
    token_usage,
    validation_results,
    workflow_instances,
)
from projections.api import AgentRun, Compensation, Task, ValidationResult, WorkflowInstance, as_struct, tenant_of


class Spend(msgspec.Struct, frozen=True, kw_only=True):
    runs: int
    tokens_in: int
    tokens_out: int
    cost: Decimal


class Dashboard(msgspec.Struct, frozen=True, kw_only=True):
    instances_by_status: dict[str, int]
    runs_by_status: dict[str, int]
    recent_runs: list[AgentRun]
    spend_today: Spend
    spend_this_month: Spend
    failing_validations: list[ValidationResult]


class CompleteWorkflow(msgspec.Struct, frozen=True, kw_only=True):
    instance: WorkflowInstance
    steps: list[Task]
    agent_runs: list[AgentRun]
    validations: list[ValidationResult]
    compensations: list[Compensation]


def bff_routes(pool: asyncpg.Pool, guards: list[Any]) -> list[HTTPRouteHandler]:
    """`/api/v1` read routes of the BFF (the seed's endpoints)."""

    @get("/dashboard", summary="Counts by status, recent runs, token spend, failing validations", guards=guards)
    async def dashboard(request: Request[Any, Any, Any]) -> Dashboard:
        tenant = tenant_of(request)
        today = datetime.now(UTC).date()
        async with pool.acquire() as conn:
            return Dashboard(
                instances_by_status=await workflow_instances.count_instances_by_status(conn, tenant),
                runs_by_status=await executions.count_executions_by_status(conn, tenant),
                recent_runs=[as_struct(r, AgentRun) for r in await executions.recent_executions(conn, tenant)],
                spend_today=as_struct(await token_usage.spend_since(conn, tenant, today), Spend),
                spend_this_month=as_struct(
                    await token_usage.spend_since(conn, tenant, date(today.year, today.month, 1)), Spend
                ),
                failing_validations=[
                    as_struct(r, ValidationResult)
                    for r in await validation_results.recent_failing_validations(conn, tenant)
                ],
            )

    @get(
        "/workflows/{instance_id:uuid}/complete", summary="An instance with its steps, runs, validations", guards=guards
    )
    async def complete(request: Request[Any, Any, Any], instance_id: FromPath[UUID]) -> CompleteWorkflow:
        tenant = tenant_of(request)
        async with pool.acquire() as conn:
            row = await workflow_instances.get_workflow_instance(conn, tenant, instance_id)
            if row is None:
                raise NotFoundException(f"workflow instance {instance_id} not found")
            steps = await tasks.list_tasks(conn, tenant, instance_id)
            runs = await executions.list_executions_of(conn, tenant, instance_id)
            checks = await validation_results.list_validations_of(conn, tenant, instance_id)
            undo = await saga_compensations.list_compensations(conn, tenant, instance_id)
        return CompleteWorkflow(
            instance=as_struct(row, WorkflowInstance),
            steps=[as_struct(s, Task) for s in steps],
            agent_runs=[as_struct(r, AgentRun) for r in runs],
            validations=[as_struct(v, ValidationResult) for v in checks],
            compensations=[as_struct(c, Compensation) for c in undo],
        )

    return [dashboard, complete]
