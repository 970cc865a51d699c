"""`aiwp whatif RUN_ID`: a recorded agent run's call made again, against another model or prompt, side by side.

The only command that calls an LLM, and it writes nothing at all: not into the run's stream, not into any
other stream, read model or table. It reads the run (and the validation that scored it) in one read-only
snapshot, makes one call through the same providers, keys and resilience as the agent worker (never through
the worker or the store's write path), then scores both outputs with the same rules.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import msgspec
import typer
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table
from rich.text import Text

from commands.llm import LlmError, LlmProvider, LlmReply, LlmRequest, complete_with_fallback
from commands.validation_runner import judge_chain, local_result
from domain.agents.agent import PROVIDERS, Agent
from domain.agents.pricing import PriceTable
from domain.validation.judge import judge_failed, judge_result
from domain.validation.ruleset import Rule, RuleSet
from domain.validation.scoring import RuleResult, score
from domain.validation.validation import Validation, ValidationRequested
from domain.workflows.instance import WorkflowInstanceStarted
from gateways.llm.resilience import Router
from ops.disclosure import Disclosure
from ops.events_cli import BadInput, console, run
from ops.inspection import Log
from ops.llm import build_llm, build_secrets
from ops.prices import price_table
from ops.settings import Settings, SettingsError
from ops.trace import expected_children
from ops.trace_cli import read_stream
from ops.whatif import NotARun, RecordedRun, cost_of, output_diff, recorded_run, rerun_request
from projections.agents import find_agent_by_name
from projections.projection import Connection, Recorded
from projections.scoring_models import find_ruleset_by_name
from projections.validation_results import find_validations_of_subject

_encoder = msgspec.json.Encoder(decimal_format="string")
Json = Annotated[bool, typer.Option("--json", help="One JSON document, for scripts.")]


class CallFailed(Exception):
    """The what-if call got no answer (after the usual retries): exit 1."""


@dataclass
class Basis:
    """The rules both outputs are scored with, and where they come from."""

    rules: list[Rule]
    threshold: float
    source: dict[str, Any]
    recorded_score: float | None = None
    recorded_passed: bool | None = None
    validated_output: str | None = None
    judge_replies: dict[str, str] = field(default_factory=dict)  # recorded, by rule id


@dataclass
class JudgeUsage:
    calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    cost: Decimal = Decimal(0)


def read_file(path: Path | None, option: str) -> str | None:
    if path is None:
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise BadInput(f"cannot read {option} {path}: {reason}") from None
    if not text.strip():
        raise BadInput(f"{option} {path} is empty")
    return text


def run_id_of(text: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise BadInput(f"{text!r} is not a run id (a UUID)") from None


def basis_of_validation(history: Sequence[Recorded]) -> Basis:
    requested = history[0].event
    assert isinstance(requested, ValidationRequested)
    check = Validation.project(r.event for r in history)
    assert check is not None
    done = check.status == "completed"
    return Basis(
        rules=list(requested.rules),
        threshold=requested.threshold,
        source={
            "from": "validation",
            "validation_id": str(requested.originator_id),
            "ruleset_id": str(requested.ruleset_id),
            "ruleset_version": requested.ruleset_version,
        },
        recorded_score=check.score if done else None,
        recorded_passed=check.passed if done else None,
        validated_output=requested.output,
        judge_replies=dict(check.judge_replies),
    )


async def validation_of(door: Disclosure, conn: Connection, recorded: RecordedRun) -> list[Recorded] | None:
    """The validation that scored the run: in a workflow, the first of a validate step aimed at the run's step
    after the run answered; otherwise one whose subject is the run."""
    ref = recorded.step
    if ref is not None and recorded.succeeded_at is not None:
        instance = await read_stream(door, conn, ref.instance_id)
        started = instance[0].event if instance else None
        if isinstance(started, WorkflowInstanceStarted):
            definition = started.definition
            aimed = {
                s.id for s in definition.steps if s.kind == "validate" and definition.params(s.id).target == ref.step_id
            }
            best: list[Recorded] | None = None
            for child in expected_children(instance):
                if child.kind != "validation" or child.step not in aimed:
                    continue
                history = await read_stream(door, conn, child.stream_id)
                later = bool(history) and history[0].position > recorded.succeeded_at
                if later and (best is None or history[0].position < best[0].position):
                    best = history
            if best is not None:
                return best
    if await conn.fetchval("SELECT to_regclass('validation_results')") is not None:
        for validation_id in await find_validations_of_subject(conn, recorded.run.tenant_id, str(recorded.run.id)):
            history = await read_stream(door, conn, validation_id)
            if history and isinstance(history[0].event, ValidationRequested):
                return history
    return None


async def basis_of(door: Disclosure, conn: Connection, recorded: RecordedRun, name: str | None) -> Basis | None:
    tenant = recorded.run.tenant_id
    if name is not None:
        found = await find_ruleset_by_name(conn, tenant, name)
        history = await read_stream(door, conn, found) if found else []
        ruleset = RuleSet.project(r.event for r in history) if history else None
        if ruleset is None:
            raise BadInput(f"no rule set named {name!r} in tenant {tenant!r}")
        source = {"from": "rule set", "name": name, "ruleset_id": str(ruleset.id)}
        return Basis(list(ruleset.rules), ruleset.threshold, source | {"ruleset_version": ruleset.ruleset_version})
    checked = await validation_of(door, conn, recorded)
    return basis_of_validation(checked) if checked else None


async def judge_agents(
    door: Disclosure, conn: Connection, tenant: str, rules: Sequence[Rule]
) -> dict[str, Agent | None]:
    """The judge agent of each `llm_judge` rule, by name (None: not registered, archived, or another tenant's)."""
    found: dict[str, Agent | None] = {}
    if await conn.fetchval("SELECT to_regclass('agents')") is None:
        return found
    for rule in rules:
        name = rule.params.get("agent")
        if rule.kind != "llm_judge" or not isinstance(name, str) or name in found:
            continue
        agent_id = await find_agent_by_name(conn, tenant, name)
        history = await read_stream(door, conn, agent_id) if agent_id else []
        agent = Agent.project(r.event for r in history) if history else None
        found[name] = agent if agent is not None and agent.tenant_id == tenant and not agent.archived else None
    return found


@dataclass
class Scorer:
    llm: LlmProvider
    prices: PriceTable
    judges: dict[str, Agent | None]

    async def judged(self, rule: Rule, output: str, usage: JudgeUsage) -> RuleResult:
        name, rubric = rule.params.get("agent"), rule.params.get("rubric")
        if not isinstance(name, str) or not isinstance(rubric, str):
            return judge_failed(rule, "parameters 'agent' and 'rubric' must be texts")
        agent = self.judges.get(name)
        if agent is None:
            return judge_failed(rule, f"judge agent {name!r} is not registered in this tenant (or is archived)")
        try:
            reply, _ = await complete_with_fallback(self.llm, judge_chain(agent, rubric, output))
        except LlmError as error:
            return judge_failed(rule, f"judge {name!r} could not be consulted: {error}")
        usage.calls += 1
        usage.tokens_in += reply.tokens_in
        usage.tokens_out += reply.tokens_out
        usage.cost += self.prices.cost(reply.provider, reply.model, reply.tokens_in, reply.tokens_out)
        return judge_result(rule, reply.text.replace("\x00", ""))

    async def scored(self, basis: Basis, output: str, replies: dict[str, str]) -> dict[str, Any]:
        """Score, verdict and per-rule results of one output; recorded judge replies are reused, not paid again."""
        usage = JudgeUsage()
        results = []
        for rule in basis.rules:
            if rule.kind != "llm_judge":
                results.append(local_result(rule, output))
            elif rule.id in replies:
                results.append(judge_result(rule, replies[rule.id]))
            else:
                results.append(await self.judged(rule, output, usage))
        verdict = score(basis.rules, basis.threshold, results)
        return {
            "score": verdict.score,
            "passed": verdict.passed,
            "results": [msgspec.to_builtins(r) for r in results],
            "judge_calls": usage.calls,
            "judge_tokens_in": usage.tokens_in,
            "judge_tokens_out": usage.tokens_out,
            "judge_cost": str(usage.cost),
        }


def unscored() -> dict[str, Any]:
    return {"score": None, "passed": None, "results": []}


async def call(llm: LlmProvider, request: LlmRequest, *, quiet: bool) -> LlmReply:
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        console=console,
        disable=quiet or not console.is_terminal,
        transient=True,
    ) as bar:
        bar.add_task(f"asking {request.provider}/{request.model}", total=None)
        try:
            return await llm.complete(request)
        except LlmError as error:
            raise CallFailed(f"the call to {request.provider}/{request.model} failed: {error}") from None


def whatif(
    run_id: Annotated[str, typer.Argument(help="The agent run's id.")],
    *,
    model: Annotated[
        str | None, typer.Option("--model", help="Another model (default: the one that answered).")
    ] = None,
    provider: Annotated[
        str | None, typer.Option("--provider", help="Another provider: openai, anthropic, openai_compatible, scripted.")
    ] = None,
    prompt_file: Annotated[
        Path | None, typer.Option("--prompt-file", help="Replaces the last user message (the step's prompt).")
    ] = None,
    system_file: Annotated[
        Path | None, typer.Option("--system-file", help="Replaces the system message (the agent's system prompt).")
    ] = None,
    rules: Annotated[
        str | None, typer.Option("--rules", help="Score with this rule set (default: the one that validated the run).")
    ] = None,
    as_json: Json = False,
) -> None:
    """Re-run a recorded agent run's exact messages against another model or prompt and compare: outputs
    (with a diff), tokens, cost, latency, and the score of the same rule set. Writes nothing.

    Example: aiwp whatif 6f1d2c9e-2b7a-4c1e-9a55-0d3c1f2b8e47 --provider openai --model gpt-4o --json
    """
    from ops.cli import load_settings  # the one way settings are read, with its exit 2

    settings = load_settings()
    document: dict[str, Any] = {}

    async def work(log: Log) -> None:
        ask = Ask(run_id, model, provider, prompt_file, system_file, rules, quiet=as_json)
        document.update(await compare(log, settings, ask))

    try:
        run(work)
    except CallFailed as error:
        typer.echo(f"aiwp: {error}", err=True)
        raise typer.Exit(1) from None
    if as_json:
        typer.echo(_encoder.encode(document).decode())
    else:
        show(document)


@dataclass(frozen=True)
class Ask:
    """What the user asked `whatif` for."""

    run_id: str
    model: str | None
    provider: str | None
    prompt_file: Path | None
    system_file: Path | None
    rules: str | None
    quiet: bool


async def compare(log: Log, settings: Settings, ask: Ask) -> dict[str, Any]:
    """Reads the run and its rules, makes the call, scores both outputs: the document `whatif` shows."""
    run_text, model, provider, rules, quiet = ask.run_id, ask.model, ask.provider, ask.rules, ask.quiet
    prompt_file, system_file = ask.prompt_file, ask.system_file
    wanted = run_id_of(run_text)
    if provider is not None and provider not in PROVIDERS:
        raise BadInput(f"unknown provider {provider!r}; providers are {', '.join(sorted(PROVIDERS))}")
    prompt, system = read_file(prompt_file, "--prompt-file"), read_file(system_file, "--system-file")
    door = Disclosure(log)
    async with log.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        history = await read_stream(door, conn, wanted)
        if not history:
            raise BadInput(f"no agent run {wanted} in the event store")
        try:
            recorded = recorded_run(history)
            request = rerun_request(recorded, provider=provider, model=model, prompt=prompt, system=system)
        except NotARun as why:
            raise BadInput(f"{wanted} {why}") from None
        if provider not in (None, recorded.provider) and model is None:
            raise BadInput(f"--provider {provider} needs --model (the run's model is {recorded.model!r})")
        if request.provider == "openai_compatible" and request.base_url is None:
            raise BadInput("an openai_compatible re-run needs the base URL of the run's own endpoint")
        basis = await basis_of(door, conn, recorded, rules)
        judges = await judge_agents(door, conn, recorded.run.tenant_id, basis.rules if basis else [])
    try:
        llm = await build_llm(settings, build_secrets(settings, os.environ))
    except SettingsError as error:
        raise BadInput(str(error)) from None
    try:
        if isinstance(llm, Router) and not llm.serves(request.provider):
            raise BadInput(f"provider {request.provider!r} has no API key here (the secrets gateway has none for it)")
        reply = await call(llm, request, quiet=quiet)
        prices = price_table(settings.prices)
        scorer = Scorer(llm, prices, judges)
        original_output = recorded.run.output if recorded.succeeded else None
        new_output = reply.text.replace("\x00", "")
        if basis is None:
            original_scores, new_scores = unscored(), unscored()
        else:
            reuse = basis.judge_replies if basis.validated_output == original_output else {}
            original_scores = (
                await scorer.scored(basis, original_output, reuse) if original_output is not None else unscored()
            )
            new_scores = await scorer.scored(basis, new_output, {})
    finally:
        await llm.close()
    return {
        "run_id": str(wanted),
        "tenant": recorded.run.tenant_id,
        "step": msgspec.to_builtins(recorded.step) if recorded.step else None,
        "changed": {
            "provider": request.provider != recorded.provider,
            "model": request.model != recorded.model,
            "prompt": prompt is not None,
            "system": system is not None,
        },
        "rules": None
        if basis is None
        else basis.source | {"threshold": basis.threshold, "rules": [r.id for r in basis.rules]},
        "original": {
            "provider": recorded.provider,
            "model": recorded.model,
            "status": recorded.run.status,
            "output": original_output,
            "tokens_in": recorded.succeeded.tokens_in if recorded.succeeded else None,
            "tokens_out": recorded.succeeded.tokens_out if recorded.succeeded else None,
            "cost": str(recorded.succeeded.cost) if recorded.succeeded else None,
            "latency_ms": recorded.succeeded.latency_ms if recorded.succeeded else None,
            "recorded_score": basis.recorded_score if basis else None,
            "recorded_passed": basis.recorded_passed if basis else None,
        }
        | original_scores,
        "whatif": {
            "provider": request.provider,
            "model": reply.model or request.model,
            "status": "answered",
            "output": new_output,
            "tokens_in": reply.tokens_in,
            "tokens_out": reply.tokens_out,
            "cost": str(cost_of(prices, request, reply)),
            "latency_ms": reply.latency_ms,
        }
        | new_scores,
        "diff": output_diff(original_output or "", new_output),
        "written": "nothing",
    }


def cell(value: Any) -> Text:
    """Event data as plain text: never read as rich markup."""
    return Text("" if value is None else str(value))


def show(document: dict[str, Any]) -> None:
    original, other = document["original"], document["whatif"]
    step = document["step"]
    where = f" (step {step['step_id']}#{step['attempt']} of instance {step['instance_id']})" if step else ""
    console.print(Text(f"run {document['run_id']}{where}"))
    basis = document["rules"]
    if basis is None:
        console.print("no rule set validated this run: scores need --rules NAME")
    elif basis["from"] == "validation":
        console.print(
            Text(
                f"scored with the rules of validation {basis['validation_id']} (rule set {basis['ruleset_id']}"
                f" v{basis['ruleset_version']}, threshold {basis['threshold']:.2f})"
            )
        )
    else:
        console.print(Text(f"scored with rule set {basis['name']!r} v{basis['ruleset_version']}"))
    table = Table(show_lines=True)
    table.add_column("")
    table.add_column("original", overflow="fold", ratio=1)
    table.add_column("what-if", overflow="fold", ratio=1)

    def row(name: str, key: str) -> None:
        table.add_row(name, cell(original.get(key)), cell(other.get(key)))

    table.add_row(
        "model", cell(f"{original['provider']}/{original['model']}"), cell(f"{other['provider']}/{other['model']}")
    )
    row("status", "status")
    table.add_row(
        "tokens in/out",
        cell(f"{original['tokens_in']}/{original['tokens_out']}" if original["tokens_in"] is not None else None),
        cell(f"{other['tokens_in']}/{other['tokens_out']}"),
    )
    row("cost", "cost")
    row("latency ms", "latency_ms")
    if basis is not None:
        table.add_row("score", cell(verdict(original)), cell(verdict(other)))
        if original.get("recorded_score") is not None:
            table.add_row("recorded score", cell(f"{original['recorded_score']:.2f}"), cell(""))
        by_rule = {r["rule_id"]: r for r in original["results"]}
        for result in other["results"]:
            mine = by_rule.get(result["rule_id"])
            table.add_row(f"rule {result['rule_id']}", cell(rule_text(mine)), cell(rule_text(result)))
    row("output", "output")
    console.print(table)
    if document["diff"]:
        console.print("[bold]output diff[/bold]")
        for line in document["diff"].splitlines():
            style = (
                "green"
                if line.startswith("+")
                else "red"
                if line.startswith("-")
                else "cyan"
                if line.startswith("@")
                else ""
            )
            console.print(Text(line, style=style))
    else:
        console.print("the outputs are the same")
    console.print("[dim]nothing was written to the event store[/dim]")


def verdict(side: dict[str, Any]) -> str:
    if side.get("score") is None:
        return ""
    return f"{side['score']:.2f} {'passed' if side['passed'] else 'failed'}"


def rule_text(result: dict[str, Any] | None) -> str:
    if result is None:
        return ""
    mark = "passed" if result["passed"] else "failed"
    return f"{result['score']:.2f} {mark}" + (f": {result['message']}" if result["message"] else "")
