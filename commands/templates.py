"""Prompt, message and condition templates: Jinja2's sandbox over a workflow's inputs and earlier outputs.

The sandbox keeps a template from reaching Python internals, and the immutable variant from changing
the values it is given; a missing variable is an error, not an empty string.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import msgspec
from jinja2 import StrictUndefined, Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from domain.workflows.definition import (
    PARAMS,
    AgentParams,
    BranchParams,
    NotifyParams,
    StepDefinition,
    WorkflowDefinition,
)

ENVIRONMENT = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


class TemplateProblem(Exception):
    """A template that does not parse, or does not render over the values it was given."""


@lru_cache(maxsize=1024)
def _template(source: str) -> Template:
    return ENVIRONMENT.from_string(source)


@lru_cache(maxsize=256)
def _expression(source: str) -> Any:
    return ENVIRONMENT.compile_expression(source, undefined_to_none=False)


def render(source: str, variables: dict[str, Any]) -> str:
    try:
        return _template(source).render(variables)
    except TemplateError as error:
        raise TemplateProblem(f"template does not render: {error}") from None


def holds(condition: str, variables: dict[str, Any]) -> bool:
    """Whether a branch condition is true over the variables."""
    try:
        return bool(_expression(condition)(**variables))
    except TemplateError as error:
        raise TemplateProblem(f"condition {condition!r} does not evaluate: {error}") from None


def _sources(kind: str, params: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(field, source, is an expression) of each template among a step's parameters."""
    try:
        typed = msgspec.convert(params, PARAMS[kind])
    except msgspec.ValidationError:
        return []  # the definition's own check reports it
    match typed:
        case AgentParams():
            return [("prompt", typed.prompt, False)]
        case NotifyParams():
            return [
                ("recipient", typed.recipient, False),
                ("template", typed.template, False),
                ("subject", typed.subject, False),
            ]
        case BranchParams():
            return [("condition", typed.condition, True)]
        case _:
            return []


def step_template_problems(step: StepDefinition) -> list[str]:
    found = [(f"params.{name}", source, expression) for name, source, expression in _sources(step.kind, step.params)]
    if step.compensate is not None and step.compensate.kind in PARAMS:
        found += [
            (f"compensate.params.{name}", source, expression)
            for name, source, expression in _sources(step.compensate.kind, step.compensate.params)
        ]
    problems = []
    for where, source, expression in found:
        try:
            if expression:
                _expression(source)
            else:
                _template(source)
        except TemplateError as error:
            problems.append(f"step {step.id!r}: {where} is not a valid template: {error}")
    return problems


def template_problems(definition: WorkflowDefinition) -> list[str]:
    """Every template of a definition that does not parse, each named with its step and field."""
    return [problem for step in definition.steps for problem in step_template_problems(step)]
