"""The command API (writes): thin Litestar handlers that decode a body, call a handler, answer.

Every dependency comes in through `command_api(...)`; nothing here knows which adapters run.
Creates answer 201 (the aggregate exists now) or 202 (work that runs later) with the id, the
version and the global position of the last event written; updates take the expected version in
`If-Match`. Every POST honours `Idempotency-Key`.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from litestar import Request, Response, delete, post, put
from litestar.exceptions import ClientException, HTTPException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody

from commands import access, agents, budgets, validation, workflows
from commands.errors import ConcurrencyError
from commands.ports import EventStore, IdempotencyStore, Replay
from commands.results import CommandResult
from domain.access.roles import Principal
from domain.agents.agent import Fallback
from domain.aggregate import CommandContext
from domain.personal import SubjectId
from domain.validation.ruleset import Rule
from domain.workflows.definition import WorkflowDefinition

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Text = Annotated[str, msgspec.Meta(max_length=200_000)]
Identifier = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_\-]{0,62}$")]
BaseUrl = Annotated[str, msgspec.Meta(pattern=r"^https?://[^\s]+$", max_length=2_000)]
TokenLimit = Annotated[int, msgspec.Meta(ge=0, le=10**15)]
CostLimit = Annotated[str, msgspec.Meta(pattern=r"^\d{1,12}(\.\d{1,8})?$", description='a decimal, e.g. "12.50"')]
TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")


class Body(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Request bodies refuse fields they do not know — a body cannot set its own tenant or role."""


class FallbackBody(Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    provider: Literal["openai", "anthropic", "openai_compatible", "scripted"]
    model: Name
    base_url: BaseUrl | None = None


class AgentBody(Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    provider: Literal["openai", "anthropic", "openai_compatible", "scripted"]
    model: Name
    system_prompt: Text = ""
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] = 0.2
    max_tokens: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1024
    base_url: BaseUrl | None = None
    fallbacks: Annotated[list[FallbackBody], msgspec.Meta(max_length=5)] = []
    json_output: bool = False


class AgentChangeBody(Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    provider: Literal["openai", "anthropic", "openai_compatible", "scripted"]
    model: Name
    system_prompt: Text = ""
    temperature: Annotated[float, msgspec.Meta(ge=0, le=2)] = 0.2
    max_tokens: Annotated[int, msgspec.Meta(ge=1, le=1_000_000)] = 1024
    base_url: BaseUrl | None = None
    fallbacks: Annotated[list[FallbackBody], msgspec.Meta(max_length=5)] = []
    json_output: bool = False


class BudgetBody(Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Limits per UTC day and month; an absent or null limit does not limit. Costs in the price table's currency."""

    tokens_per_day: TokenLimit | None = None
    tokens_per_month: TokenLimit | None = None
    cost_per_day: CostLimit | None = None
    cost_per_month: CostLimit | None = None


class AgentRunBody(Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    agent_id: UUID
    prompt: Annotated[str, msgspec.Meta(min_length=1, max_length=200_000)]
    context_id: UUID | None = None
    # The data subject the run is about: its prompt and output are sealed with the subject's key (ADR 0008).
    subject: SubjectId | None = None


class ReasonBody(Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(max_length=2_000)] = ""


class RuleBody(Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: Identifier
    kind: Literal["regex", "json_schema", "length", "contains", "not_contains", "pii", "llm_judge"]
    weight: Annotated[float, msgspec.Meta(gt=0, le=1_000)] = 1.0
    params: dict[str, Any] = {}


class RuleSetBody(Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    rules: Annotated[list[RuleBody], msgspec.Meta(min_length=1, max_length=100)]
    threshold: Annotated[float, msgspec.Meta(ge=0, le=1)]


class ValidationBody(Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    ruleset_id: UUID
    subject_type: Name
    subject_id: Name
    output: Text


class RetryBody(Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    max_attempts: Annotated[int, msgspec.Meta(ge=1, le=100)] = 1
    backoff_seconds: Annotated[float, msgspec.Meta(ge=0, le=86_400)] = 0.0


class CompensationBody(Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    kind: Literal["agent", "validate", "notify", "approval", "branch"]
    params: dict[str, Any] = {}


class StepBody(Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: Identifier
    kind: Literal["agent", "validate", "notify", "approval", "branch"]
    needs: Annotated[list[Identifier], msgspec.Meta(max_length=100)] = []
    params: dict[str, Any] = {}
    retry: RetryBody = RetryBody()
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=31_536_000)] | None = None
    compensate: CompensationBody | None = None


class DefinitionBody(Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    steps: Annotated[list[StepBody], msgspec.Meta(min_length=1, max_length=200)]
    inputs: Annotated[list[Identifier], msgspec.Meta(max_length=100)] = []


class TemplateBody(Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    definition: DefinitionBody


class TemplateChangeBody(Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    definition: DefinitionBody


class InstanceBody(Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    template_id: UUID
    inputs: dict[str, Any] = {}
    # The data subject the instance is about: its inputs, outputs, messages (and those of its runs and
    # validations) are sealed with the subject's key and can be erased with `aiwp gdpr erase` (ADR 0008).
    subject: SubjectId | None = None


class SignalBody(Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    payload: dict[str, Any] = {}


class ApiKeyBody(Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    roles: Annotated[list[Literal["admin", "operator", "viewer", "auditor"]], msgspec.Meta(min_length=1, max_length=4)]


class ExecuteBody(Body, frozen=True, kw_only=True, forbid_unknown_fields=True):
    template: Name
    inputs: dict[str, Any] = {}
    subject: SubjectId | None = None  # as for `POST /v1/workflow-instances`


class Accepted(msgspec.Struct, frozen=True, kw_only=True):
    """What a command answers: the aggregate, its version, and the position to read your writes at."""

    id: UUID
    version: int
    position: int


class IssuedKey(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    key: str
    position: int


class PreconditionFailed(HTTPException):
    status_code = 412


@dataclass(frozen=True)
class CommandApi:
    store: EventStore
    idempotency: IdempotencyStore
    clock: Callable[[], datetime]

    def context(self, request: Request[Any, Any, Any], subject: str | None = None) -> CommandContext:
        principal = request.user
        assert isinstance(principal, Principal)
        correlation = _uuid_header(request, "x-correlation-id") or uuid.uuid4()
        traceparent = request.headers.get("traceparent", "")
        return CommandContext(
            at=self.clock(),
            tenant_id=principal.tenant_id,
            actor=principal.subject,
            correlation_id=correlation,
            causation_id=_uuid_header(request, "x-causation-id") or correlation,
            traceparent=traceparent if TRACEPARENT.match(traceparent) else "",
            subject=subject or "",
        )

    async def answer(
        self,
        request: Request[Any, Any, Any],
        run: Callable[[], Awaitable[tuple[int, msgspec.Struct, dict[str, str]]]],
    ) -> Response[Any]:
        # The route's annotation (e.g. Response[Accepted]) documents the body; the bytes sent are that Struct's
        # JSON, encoded once so that a replay sends exactly the same bytes.
        """Runs a write once per `Idempotency-Key`: a retry gets the first answer and writes nothing."""
        body = await request.body()
        if b"\\u0000" in body:
            raise ValidationException("text fields may not contain NUL characters")
        key = request.headers.get("idempotency-key")
        principal = request.user
        assert isinstance(principal, Principal)
        if key is None or request.method != "POST":
            status, content, headers = await run()
            return Response(
                msgspec.json.encode(content), status_code=status, headers=headers, media_type="application/json"
            )
        if not 1 <= len(key) <= 200:
            raise ValidationException("Idempotency-Key must be 1 to 200 characters")
        digest = hashlib.sha256(f"{request.method} {request.url.path}\n".encode() + body).digest()
        claim = await self.idempotency.claim(principal.tenant_id, key, digest)
        if isinstance(claim, Replay):
            headers = claim.headers | {"Idempotent-Replayed": "true"}
            return Response(claim.body, status_code=claim.status_code, headers=headers, media_type="application/json")
        if claim == "mismatch":
            raise HTTPException(status_code=422, detail="this Idempotency-Key was used with another request body")
        if claim == "in_progress":
            raise HTTPException(status_code=409, detail="a request with this Idempotency-Key is still running")
        try:
            status, content, headers = await run()
        except BaseException:
            await self.idempotency.release(principal.tenant_id, key)
            raise
        encoded = msgspec.json.encode(content)
        await self.idempotency.complete(
            principal.tenant_id, key, Replay(status_code=status, body=encoded, headers=headers)
        )
        return Response(encoded, status_code=status, headers=headers, media_type="application/json")


def _uuid_header(request: Request[Any, Any, Any], name: FromPath[str]) -> UUID | None:
    value = request.headers.get(name)
    if not value:
        return None
    try:
        return UUID(value)
    except ValueError:
        raise ClientException(f"{name} must be a UUID") from None


def expected_version(request: Request[Any, Any, Any]) -> int | None:
    """The version in `If-Match` (`"3"`, `W/"3"` or `3`), or None when the header is absent."""
    value = request.headers.get("if-match")
    if value is None:
        return None
    text = value.strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise ClientException('If-Match must be the version the resource was read at, e.g. "3"')
    return int(text)


def created(result: CommandResult, location: str, status: int = 201) -> tuple[int, Accepted, dict[str, str]]:
    headers = {"Location": f"{location}/{result.id}", "ETag": f'"{result.version}"'}
    return status, Accepted(id=result.id, version=result.version, position=result.position), headers


async def changed(
    request: Request[Any, Any, Any], run: Callable[[int | None], Awaitable[CommandResult]], status: int = 200
) -> tuple[int, Accepted, dict[str, str]]:
    expected = expected_version(request)
    try:
        result = await run(expected)
    except ConcurrencyError as conflict:
        if expected is not None:
            raise PreconditionFailed(detail=str(conflict)) from None
        raise
    return (
        status,
        Accepted(id=result.id, version=result.version, position=result.position),
        {"ETag": f'"{result.version}"'},
    )


def definition_of(body: DefinitionBody) -> WorkflowDefinition:
    return msgspec.convert(msgspec.to_builtins(body), WorkflowDefinition)


def command_api(api: CommandApi, guards: list[Any]) -> list[HTTPRouteHandler]:
    """The `/v1` write routes; `guards` check the caller may send commands."""

    @post("/agents", status_code=201, summary="Register an agent", guards=guards)
    async def create_agent(request: Request[Any, Any, Any], data: JSONBody[AgentBody]) -> Response[Accepted]:
        async def run() -> tuple[int, Accepted, dict[str, str]]:
            command = agents.RegisterAgent(**agent_config(data))
            return created(await agents.register_agent(api.store, api.context(request), command), "/v1/agents")

        return await api.answer(request, run)

    @put("/agents/{agent_id:uuid}", summary="Change an agent's configuration (If-Match: its version)", guards=guards)
    async def change_agent(
        request: Request[Any, Any, Any], agent_id: FromPath[UUID], data: JSONBody[AgentChangeBody]
    ) -> Response[Accepted]:
        async def run() -> tuple[int, Accepted, dict[str, str]]:
            return await changed(
                request,
                lambda expected: agents.reconfigure_agent(
                    api.store,
                    api.context(request),
                    agents.ReconfigureAgent(agent_id=agent_id, expected_version=expected, **agent_config(data)),
                ),
            )

        return await api.answer(request, run)

    @post("/agent-runs", status_code=202, summary="Request a run of an agent", guards=guards)
    async def create_run(request: Request[Any, Any, Any], data: JSONBody[AgentRunBody]) -> Response[Accepted]:
        async def run() -> tuple[int, Accepted, dict[str, str]]:
            command = agents.RequestAgentRun(agent_id=data.agent_id, prompt=data.prompt, context_id=data.context_id)
            return created(
                await agents.request_agent_run(api.store, api.context(request, data.subject), command),
                "/v1/agent-runs",
                202,
            )

        return await api.answer(request, run)

    @post(
        "/agent-runs/{run_id:uuid}/cancel", status_code=202, summary="Cancel a run that has not finished", guards=guards
    )
    async def cancel_run(
        request: Request[Any, Any, Any], run_id: FromPath[UUID], data: JSONBody[ReasonBody | None] = None
    ) -> Response[Accepted]:
        reason = (data.reason if data else "") or "cancelled by request"

        async def run() -> tuple[int, Accepted, dict[str, str]]:
            return await changed(
                request,
                lambda _: agents.cancel_agent_run(
                    api.store, api.context(request), agents.CancelAgentRun(run_id=run_id, reason=reason)
                ),
                202,
            )

        return await api.answer(request, run)

    @post("/rulesets", status_code=201, summary="Define a rule set", guards=guards)
    async def create_ruleset(request: Request[Any, Any, Any], data: JSONBody[RuleSetBody]) -> Response[Accepted]:
        async def run() -> tuple[int, Accepted, dict[str, str]]:
            command = validation.DefineRuleSet(name=data.name, rules=rules_of(data), threshold=data.threshold)
            return created(await validation.define_ruleset(api.store, api.context(request), command), "/v1/rulesets")

        return await api.answer(request, run)

    @put("/rulesets/{ruleset_id:uuid}", summary="Revise a rule set (If-Match: its version)", guards=guards)
    async def change_ruleset(
        request: Request[Any, Any, Any], ruleset_id: FromPath[UUID], data: JSONBody[RuleSetBody]
    ) -> Response[Accepted]:
        async def run() -> tuple[int, Accepted, dict[str, str]]:
            return await changed(
                request,
                lambda expected: validation.revise_ruleset(
                    api.store,
                    api.context(request),
                    validation.ReviseRuleSet(
                        ruleset_id=ruleset_id, rules=rules_of(data), threshold=data.threshold, expected_version=expected
                    ),
                ),
            )

        return await api.answer(request, run)

    @post("/validations", status_code=202, summary="Validate an output against a rule set", guards=guards)
    async def create_validation(request: Request[Any, Any, Any], data: JSONBody[ValidationBody]) -> Response[Accepted]:
        async def run() -> tuple[int, Accepted, dict[str, str]]:
            command = validation.RequestValidation(**msgspec.structs.asdict(data))
            return created(
                await validation.request_validation(api.store, api.context(request), command), "/v1/validations", 202
            )

        return await api.answer(request, run)

    @post("/workflow-templates", status_code=201, summary="Register a workflow template", guards=guards)
    async def create_template(request: Request[Any, Any, Any], data: JSONBody[TemplateBody]) -> Response[Accepted]:
        async def run() -> tuple[int, Accepted, dict[str, str]]:
            command = workflows.RegisterWorkflowTemplate(name=data.name, definition=definition_of(data.definition))
            return created(
                await workflows.register_workflow_template(api.store, api.context(request), command),
                "/v1/workflow-templates",
            )

        return await api.answer(request, run)

    @put(
        "/workflow-templates/{template_id:uuid}",
        summary="Publish a new version of a template (If-Match)",
        guards=guards,
    )
    async def change_template(
        request: Request[Any, Any, Any], template_id: FromPath[UUID], data: JSONBody[TemplateChangeBody]
    ) -> Response[Accepted]:
        async def run() -> tuple[int, Accepted, dict[str, str]]:
            return await changed(
                request,
                lambda expected: workflows.revise_workflow_template(
                    api.store,
                    api.context(request),
                    workflows.ReviseWorkflowTemplate(
                        template_id=template_id, definition=definition_of(data.definition), expected_version=expected
                    ),
                ),
            )

        return await api.answer(request, run)

    @post("/workflow-instances", status_code=202, summary="Start a workflow instance", guards=guards)
    async def create_instance(request: Request[Any, Any, Any], data: JSONBody[InstanceBody]) -> Response[Accepted]:
        async def run() -> tuple[int, Accepted, dict[str, str]]:
            command = workflows.StartWorkflowInstance(template_id=data.template_id, inputs=data.inputs)
            return created(
                await workflows.start_workflow_instance(api.store, api.context(request, data.subject), command),
                "/v1/workflow-instances",
                202,
            )

        return await api.answer(request, run)

    @post(
        "/workflow-instances/{instance_id:uuid}/signals/{name:str}",
        status_code=202,
        summary="Signal an instance",
        guards=guards,
    )
    async def signal_instance(
        request: Request[Any, Any, Any],
        instance_id: FromPath[UUID],
        name: FromPath[str],
        data: JSONBody[SignalBody | None] = None,
    ) -> Response[Accepted]:
        async def run() -> tuple[int, Accepted, dict[str, str]]:
            command = workflows.SignalWorkflowInstance(
                instance_id=instance_id,
                name=name,
                payload=data.payload if data else {},
                roles=sorted(request.user.roles),  # an approval step checks who answers it
            )
            return await changed(
                request, lambda _: workflows.signal_workflow_instance(api.store, api.context(request), command), 202
            )

        return await api.answer(request, run)

    @post(
        "/workflow-instances/{instance_id:uuid}/cancel",
        status_code=202,
        summary="Cancel a running instance",
        guards=guards,
    )
    async def cancel_instance(
        request: Request[Any, Any, Any], instance_id: FromPath[UUID], data: JSONBody[ReasonBody | None] = None
    ) -> Response[Accepted]:
        reason = (data.reason if data else "") or "cancelled by request"

        async def run() -> tuple[int, Accepted, dict[str, str]]:
            command = workflows.CancelWorkflowInstance(instance_id=instance_id, reason=reason)
            return await changed(
                request, lambda _: workflows.cancel_workflow_instance(api.store, api.context(request), command), 202
            )

        return await api.answer(request, run)

    return [
        create_agent,
        change_agent,
        create_run,
        cancel_run,
        create_ruleset,
        change_ruleset,
        create_validation,
        create_template,
        change_template,
        create_instance,
        signal_instance,
        cancel_instance,
    ]


def api_key_api(api: CommandApi, guards: list[Any]) -> list[HTTPRouteHandler]:
    """Issuing and revoking API keys (admins only)."""

    @post("/api-keys", status_code=201, summary="Issue an API key for this tenant (shown once)", guards=guards)
    async def issue_key(request: Request[Any, Any, Any], data: JSONBody[ApiKeyBody]) -> Response[IssuedKey]:
        async def run() -> tuple[int, IssuedKey, dict[str, str]]:
            issued = await access.issue_api_key(
                api.store, api.context(request), access.IssueApiKey(name=data.name, roles=list(data.roles))
            )
            headers = {"Location": f"/v1/api-keys/{issued.result.id}", "Cache-Control": "no-store"}
            return 201, IssuedKey(id=issued.result.id, key=issued.key, position=issued.result.position), headers

        return await api.answer(request, run)

    @delete("/api-keys/{key_id:uuid}", status_code=200, summary="Revoke an API key", guards=guards)
    async def revoke_key(request: Request[Any, Any, Any], key_id: FromPath[UUID]) -> Response[Accepted]:
        async def run() -> tuple[int, Accepted, dict[str, str]]:
            return await changed(
                request,
                lambda _: access.revoke_api_key(api.store, api.context(request), access.RevokeApiKey(key_id=key_id)),
            )

        return await api.answer(request, run)

    return [issue_key, revoke_key]


# (tenant, template name, position to wait for) → the template's id; the query side answers it.
TemplateByName = Callable[[str, str, int | None], Awaitable[UUID | None]]


def bff_command_api(api: CommandApi, find_template: TemplateByName, guards: list[Any]) -> list[HTTPRouteHandler]:
    """The BFF's write route: start an instance from a template's name."""

    @post("/workflows/execute", status_code=202, summary="Start an instance of the named template", guards=guards)
    async def execute(request: Request[Any, Any, Any], data: JSONBody[ExecuteBody]) -> Response[Accepted]:
        async def run() -> tuple[int, Accepted, dict[str, str]]:
            ctx = api.context(request, data.subject)
            position = request.headers.get("x-consistency-position")
            if position is not None and not position.isdigit():
                raise ClientException("X-Consistency-Position must be a position (a whole number)")
            template_id = await find_template(ctx.tenant_id, data.template, int(position) if position else None)
            if template_id is None:
                raise HTTPException(status_code=404, detail=f"no active workflow template named {data.template!r}")
            command = workflows.StartWorkflowInstance(template_id=template_id, inputs=data.inputs)
            return created(
                await workflows.start_workflow_instance(api.store, ctx, command), "/v1/workflow-instances", 202
            )

        return await api.answer(request, run)

    return [execute]


def budget_api(api: CommandApi, guards: list[Any]) -> list[HTTPRouteHandler]:
    """Setting the tenant's budget (admins only)."""

    @put("/budget", summary="Set this tenant's token and cost budget per day and month (If-Match)", guards=guards)
    async def set_budget(request: Request[Any, Any, Any], data: JSONBody[BudgetBody]) -> Response[Accepted]:
        def cost(value: str | None) -> Decimal | None:
            return None if value is None else Decimal(value)

        async def run() -> tuple[int, Accepted, dict[str, str]]:
            return await changed(
                request,
                lambda expected: budgets.set_budget(
                    api.store,
                    api.context(request),
                    budgets.SetBudget(
                        tokens_per_day=data.tokens_per_day,
                        tokens_per_month=data.tokens_per_month,
                        cost_per_day=cost(data.cost_per_day),
                        cost_per_month=cost(data.cost_per_month),
                        expected_version=expected,
                    ),
                ),
            )

        return await api.answer(request, run)

    return [set_budget]


def agent_config(body: AgentBody | AgentChangeBody) -> dict[str, Any]:
    """The body's configuration as the command takes it: fallbacks as the domain's value objects."""
    fields = msgspec.structs.asdict(body)
    return fields | {"fallbacks": [Fallback(**msgspec.structs.asdict(f)) for f in body.fallbacks]}


def rules_of(body: RuleSetBody) -> list[Rule]:
    return [Rule(id=r.id, kind=r.kind, weight=r.weight, params=r.params) for r in body.rules]
