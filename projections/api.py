"""The query API (reads): list and get over the read models, scoped to the caller's tenant.

Lists are paginated with an opaque cursor (`next_cursor`). A request with
`X-Consistency-Position: N` first waits (at most 5 s) until the read models it uses have applied
everything up to N — read-your-writes — and answers 503 with `Retry-After` past that.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar
from uuid import UUID

import asyncpg
import msgspec
from litestar import Request, Response, get
from litestar.exceptions import ClientException, NotFoundException, ServiceUnavailableException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, FromQuery, QueryParameter

from domain.access.roles import Principal
from projections import (
    agents,
    audit_events,
    budgets,
    contexts,
    executions,
    saga_compensations,
    scoring_models,
    tasks,
    token_usage,
    validation_results,
    validation_rules,
    workflow_instances,
    workflows,
)

T = TypeVar("T")
CONSISTENCY_WAIT = 5.0
Limit = Annotated[int, QueryParameter(ge=1, le=500, description="Items per page")]
Cursor = Annotated[str | None, QueryParameter(description="The `next_cursor` of the previous page")]


class Page(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    items: list[T]
    next_cursor: str | None


class FallbackView(msgspec.Struct, frozen=True, kw_only=True):
    provider: str
    model: str
    base_url: str | None = None


class Agent(msgspec.Struct, frozen=True, kw_only=True):
    agent_id: UUID
    name: str
    provider: str
    model: str
    system_prompt: str
    temperature: float
    max_tokens: int
    config_version: int
    archived: bool
    created_at: datetime
    updated_at: datetime
    version: int
    base_url: str | None = None
    fallbacks: list[FallbackView] = []
    json_output: bool = False


class Message(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    role: str
    content: str
    recorded_at: datetime


class AgentRun(msgspec.Struct, frozen=True, kw_only=True):
    run_id: UUID
    agent_id: UUID
    agent_config_version: int
    provider: str
    model: str
    status: str
    attempts: int
    output: str
    error: str
    tokens_in: int
    tokens_out: int
    cost: Decimal
    latency_ms: int
    context_id: UUID | None
    requested_at: datetime
    finished_at: datetime | None
    version: int
    refused_until: datetime | None = None  # a run refused by the budget: when the budget resets
    messages: list[Message] = []


class TokenUsage(msgspec.Struct, frozen=True, kw_only=True):
    agent_id: UUID
    model: str
    day: date
    runs: int
    tokens_in: int
    tokens_out: int
    cost: Decimal


class BudgetUsage(msgspec.Struct, frozen=True, kw_only=True):
    start: date
    runs: int
    spent_tokens: int
    spent_cost: Decimal
    reserved_tokens: int  # held by runs still in flight
    reserved_cost: Decimal


class Budget(msgspec.Struct, frozen=True, kw_only=True):
    tokens_per_day: int | None
    tokens_per_month: int | None
    cost_per_day: Decimal | None
    cost_per_month: Decimal | None
    day: BudgetUsage
    month: BudgetUsage
    updated_at: datetime
    version: int


class WorkflowTemplate(msgspec.Struct, frozen=True, kw_only=True):
    template_id: UUID
    name: str
    template_version: int
    definition: dict[str, Any]
    retired: bool
    created_at: datetime
    updated_at: datetime
    version: int


class Task(msgspec.Struct, frozen=True, kw_only=True):
    step_id: str
    kind: str
    status: str
    attempts: int
    output: Any
    error: str
    started_at: datetime | None
    finished_at: datetime | None


class Compensation(msgspec.Struct, frozen=True, kw_only=True):
    step_id: str
    plan_index: int
    failed_step: str
    reason: str
    status: str
    planned_at: datetime
    compensated_at: datetime | None


class WorkflowInstance(msgspec.Struct, frozen=True, kw_only=True):
    instance_id: UUID
    template_id: UUID
    template_name: str
    template_version: int
    status: str
    inputs: dict[str, Any]
    reason: str
    started_at: datetime
    finished_at: datetime | None
    version: int
    tasks: list[Task] = []
    compensations: list[Compensation] = []


class RuleView(msgspec.Struct, frozen=True, kw_only=True):
    rule_id: str
    kind: str
    weight: float
    params: dict[str, Any]


class RuleSet(msgspec.Struct, frozen=True, kw_only=True):
    ruleset_id: UUID
    name: str
    ruleset_version: int
    threshold: float
    rule_count: int
    total_weight: float
    created_at: datetime
    updated_at: datetime
    version: int
    rules: list[RuleView] = []


class ValidationResult(msgspec.Struct, frozen=True, kw_only=True):
    validation_id: UUID
    ruleset_id: UUID
    ruleset_version: int
    subject_type: str
    subject_id: str
    status: str
    score: float | None
    passed: bool | None
    feedback: str
    results: list[dict[str, Any]]
    requested_at: datetime
    completed_at: datetime | None
    version: int
    judge_calls: int = 0  # `llm_judge` calls that answered
    judge_cost: Decimal = Decimal(0)


class AuditEvent(msgspec.Struct, frozen=True, kw_only=True):
    position: int
    occurred_at: datetime
    event_id: UUID
    stream_id: UUID
    stream_version: int
    type: str
    context: str
    actor: str
    correlation_id: UUID
    causation_id: UUID
    data: Any


Waiter = Callable[[int, Sequence[str]], Awaitable[bool]]


def as_struct(row: dict[str, Any], kind: type[T], **extra: Any) -> T:
    fields = set(getattr(kind, "__struct_fields__", ()))
    return msgspec.convert({k: v for k, v in row.items() if k in fields} | extra, kind, from_attributes=False)


def encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps([str(v) for v in values]).encode()).decode()


def decode_time_cursor(cursor: str | None) -> tuple[datetime, UUID] | None:
    if cursor is None:
        return None
    try:
        stamp, ident = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(stamp), UUID(ident)
    except (ValueError, TypeError, json.JSONDecodeError):
        raise ClientException("cursor is not one this API gave out") from None


def page(rows: list[dict[str, Any]], kind: type[T], limit: int, time_key: str, id_key: str) -> Page[T]:
    cursor = encode_cursor(rows[-1][time_key], rows[-1][id_key]) if len(rows) == limit else None
    return Page(items=[as_struct(r, kind) for r in rows], next_cursor=cursor)


def tenant_of(request: Request[Any, Any, Any]) -> str:
    principal = request.user
    assert isinstance(principal, Principal)
    return principal.tenant_id


def etagged(content: msgspec.Struct, version: int) -> Response[msgspec.Struct]:
    return Response(content, headers={"ETag": f'"{version}"'})


def query_api(
    pool: asyncpg.Pool, wait_for: Waiter, guards: list[Any], audit_guards: list[Any]
) -> list[HTTPRouteHandler]:
    """The `/v1` read routes; `guards` check the caller may read, `audit_guards` the audit trail."""

    async def consistent(request: Request[Any, Any, Any], names: Sequence[str]) -> None:
        value = request.headers.get("x-consistency-position")
        if value is None:
            return
        if not value.isdigit():
            raise ClientException("X-Consistency-Position must be a position (a whole number)")
        if not await wait_for(int(value), names):
            raise ServiceUnavailableException(
                detail=f"the read models have not reached position {value} yet", headers={"Retry-After": "1"}
            )

    @get("/agents", summary="List agents", guards=guards)
    async def list_agents(request: Request[Any, Any, Any], limit: Limit = 50, cursor: Cursor = None) -> Page[Agent]:
        await consistent(request, ["agents"])
        async with pool.acquire() as conn:
            rows = await agents.list_agents(conn, tenant_of(request), after=decode_time_cursor(cursor), limit=limit)
        return page(rows, Agent, limit, "created_at", "agent_id")

    @get("/agents/{agent_id:uuid}", summary="Get an agent (ETag: its version)", guards=guards)
    async def get_agent(request: Request[Any, Any, Any], agent_id: FromPath[UUID]) -> Response[Agent]:
        await consistent(request, ["agents"])
        async with pool.acquire() as conn:
            row = await agents.get_agent(conn, tenant_of(request), agent_id)
        if row is None:
            raise NotFoundException(f"agent {agent_id} not found")
        return etagged(as_struct(row, Agent), row["version"])  # type: ignore[return-value]

    @get("/agent-runs", summary="List agent runs", guards=guards)
    async def list_runs(
        request: Request[Any, Any, Any],
        status: FromQuery[str | None] = None,
        agent_id: FromQuery[UUID | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[AgentRun]:
        await consistent(request, ["executions"])
        async with pool.acquire() as conn:
            rows = await executions.list_executions(
                conn,
                tenant_of(request),
                status=status,
                agent_id=agent_id,
                since=since,
                until=until,
                after=decode_time_cursor(cursor),
                limit=limit,
            )
        return page(rows, AgentRun, limit, "requested_at", "run_id")

    @get("/agent-runs/{run_id:uuid}", summary="Get an agent run with its conversation", guards=guards)
    async def get_run(request: Request[Any, Any, Any], run_id: FromPath[UUID]) -> Response[AgentRun]:
        await consistent(request, ["executions", "contexts"])
        tenant = tenant_of(request)
        async with pool.acquire() as conn:
            row = await executions.get_execution(conn, tenant, run_id)
            if row is None:
                raise NotFoundException(f"agent run {run_id} not found")
            messages = await contexts.get_context(conn, tenant, run_id)
        return etagged(as_struct(row, AgentRun, messages=messages), row["version"])  # type: ignore[return-value]

    @get("/token-usage", summary="Tokens and cost per agent, model and day", guards=guards)
    async def list_usage(
        request: Request[Any, Any, Any], since: FromQuery[date | None] = None, until: FromQuery[date | None] = None
    ) -> list[TokenUsage]:
        await consistent(request, ["token_usage"])
        async with pool.acquire() as conn:
            rows = await token_usage.list_token_usage(conn, tenant_of(request), since=since, until=until)
        return [as_struct(r, TokenUsage) for r in rows]

    @get("/budget", summary="This tenant's budget, and its use on a UTC day and in that month", guards=guards)
    async def get_budget(request: Request[Any, Any, Any], day: FromQuery[date | None] = None) -> Response[Budget]:
        await consistent(request, ["budgets"])
        async with pool.acquire() as conn:
            row = await budgets.get_budget(conn, tenant_of(request), day or datetime.now(UTC).date())
        if row is None:
            raise NotFoundException("this tenant has no budget; an admin sets one with PUT /v1/budget")
        return etagged(as_struct(row, Budget), row["version"])  # type: ignore[return-value]

    @get("/workflow-templates", summary="List workflow templates", guards=guards)
    async def list_templates(
        request: Request[Any, Any, Any], limit: Limit = 50, cursor: Cursor = None
    ) -> Page[WorkflowTemplate]:
        await consistent(request, ["workflows"])
        async with pool.acquire() as conn:
            rows = await workflows.list_workflow_templates(
                conn, tenant_of(request), after=decode_time_cursor(cursor), limit=limit
            )
        return page(rows, WorkflowTemplate, limit, "created_at", "template_id")

    @get("/workflow-templates/{template_id:uuid}", summary="Get a workflow template", guards=guards)
    async def get_template(request: Request[Any, Any, Any], template_id: FromPath[UUID]) -> Response[WorkflowTemplate]:
        await consistent(request, ["workflows"])
        async with pool.acquire() as conn:
            row = await workflows.get_workflow_template(conn, tenant_of(request), template_id)
        if row is None:
            raise NotFoundException(f"workflow template {template_id} not found")
        return etagged(as_struct(row, WorkflowTemplate), row["version"])  # type: ignore[return-value]

    @get("/workflow-instances", summary="List workflow instances", guards=guards)
    async def list_instances(
        request: Request[Any, Any, Any],
        status: FromQuery[str | None] = None,
        template_id: FromQuery[UUID | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[WorkflowInstance]:
        await consistent(request, ["workflow_instances"])
        async with pool.acquire() as conn:
            rows = await workflow_instances.list_workflow_instances(
                conn,
                tenant_of(request),
                status=status,
                template_id=template_id,
                since=since,
                until=until,
                after=decode_time_cursor(cursor),
                limit=limit,
            )
        return page(rows, WorkflowInstance, limit, "started_at", "instance_id")

    @get(
        "/workflow-instances/{instance_id:uuid}",
        summary="Get an instance with its tasks and compensations",
        guards=guards,
    )
    async def get_instance(request: Request[Any, Any, Any], instance_id: FromPath[UUID]) -> Response[WorkflowInstance]:
        await consistent(request, ["workflow_instances", "tasks", "saga_compensations"])
        tenant = tenant_of(request)
        async with pool.acquire() as conn:
            row = await workflow_instances.get_workflow_instance(conn, tenant, instance_id)
            if row is None:
                raise NotFoundException(f"workflow instance {instance_id} not found")
            steps = await tasks.list_tasks(conn, tenant, instance_id)
            undo = await saga_compensations.list_compensations(conn, tenant, instance_id)
        view = as_struct(row, WorkflowInstance, tasks=steps, compensations=undo)
        return etagged(view, row["version"])  # type: ignore[return-value]

    @get("/rulesets", summary="List rule sets", guards=guards)
    async def list_rulesets(request: Request[Any, Any, Any], limit: Limit = 50, cursor: Cursor = None) -> Page[RuleSet]:
        await consistent(request, ["scoring_models"])
        async with pool.acquire() as conn:
            rows = await scoring_models.list_scoring_models(
                conn, tenant_of(request), after=decode_time_cursor(cursor), limit=limit
            )
        return page(rows, RuleSet, limit, "created_at", "ruleset_id")

    @get("/rulesets/{ruleset_id:uuid}", summary="Get a rule set with its rules", guards=guards)
    async def get_ruleset(request: Request[Any, Any, Any], ruleset_id: FromPath[UUID]) -> Response[RuleSet]:
        await consistent(request, ["scoring_models", "validation_rules"])
        tenant = tenant_of(request)
        async with pool.acquire() as conn:
            row = await scoring_models.get_scoring_model(conn, tenant, ruleset_id)
            if row is None:
                raise NotFoundException(f"rule set {ruleset_id} not found")
            rules = await validation_rules.list_rules(conn, tenant, ruleset_id)
        return etagged(as_struct(row, RuleSet, rules=rules), row["version"])  # type: ignore[return-value]

    @get("/validations", summary="List validations", guards=guards)
    async def list_validations(
        request: Request[Any, Any, Any],
        passed: FromQuery[bool | None] = None,
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Page[ValidationResult]:
        await consistent(request, ["validation_results"])
        async with pool.acquire() as conn:
            rows = await validation_results.list_validations(
                conn,
                tenant_of(request),
                passed=passed,
                since=since,
                until=until,
                after=decode_time_cursor(cursor),
                limit=limit,
            )
        return page(rows, ValidationResult, limit, "requested_at", "validation_id")

    @get("/validations/{validation_id:uuid}", summary="Get a validation", guards=guards)
    async def get_validation(
        request: Request[Any, Any, Any], validation_id: FromPath[UUID]
    ) -> Response[ValidationResult]:
        await consistent(request, ["validation_results"])
        async with pool.acquire() as conn:
            row = await validation_results.get_validation(conn, tenant_of(request), validation_id)
        if row is None:
            raise NotFoundException(f"validation {validation_id} not found")
        return etagged(as_struct(row, ValidationResult), row["version"])  # type: ignore[return-value]

    @get("/audit/events", summary="The audit trail of this tenant (auditors and admins)", guards=audit_guards)
    async def list_audit(
        request: Request[Any, Any, Any],
        since: FromQuery[datetime | None] = None,
        until: FromQuery[datetime | None] = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Page[AuditEvent]:
        await consistent(request, ["audit_events"])
        after = 0
        if cursor is not None:
            try:
                after = int(json.loads(base64.urlsafe_b64decode(cursor.encode()))[0])
            except (ValueError, TypeError, IndexError, json.JSONDecodeError):
                raise ClientException("cursor is not one this API gave out") from None
        async with pool.acquire() as conn:
            rows = await audit_events.list_audit_events(
                conn, tenant_of(request), since=since, until=until, after=after, limit=limit
            )
        next_cursor = encode_cursor(rows[-1]["position"]) if len(rows) == limit else None
        return Page(items=[as_struct(r, AuditEvent) for r in rows], next_cursor=next_cursor)

    return [
        list_agents,
        get_agent,
        list_runs,
        get_run,
        list_usage,
        get_budget,
        list_templates,
        get_template,
        list_instances,
        get_instance,
        list_rulesets,
        get_ruleset,
        list_validations,
        get_validation,
        list_audit,
    ]
