"""docs/workflows.md tells the truth: its YAML reads as a template, and its refusal lists these problems."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from commands.workflow_file import read_workflow
from domain.workflows.errors import InvalidWorkflowDefinition

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "workflows.md").read_text()


def test_every_yaml_example_of_the_doc_and_the_example_file_is_a_valid_template() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC, flags=re.DOTALL)
    assert blocks
    for block in [*blocks, (ROOT / "examples" / "support-triage.yaml").read_text()]:
        assert read_workflow(block).name == "support-triage"


def test_the_refusal_shown_in_the_doc_is_what_a_broken_template_gets() -> None:
    broken = """
name: broken
steps:
  - {id: draft, kind: agent, params: {agent: writer}}
  - {id: other, kind: agent, params: {agent: writer, prompt: hi}}
  - {id: check, kind: validate, needs: [draft], params: {ruleset: q, target: other}}
  - id: send
    kind: notify
    params: {channel: email, recipient: a, template: "{{ outputs.draft }"}
"""
    with pytest.raises(InvalidWorkflowDefinition) as refused:
        read_workflow(broken)
    shown = re.search(r'"problems": \[(.*?)\]\}', DOC, flags=re.DOTALL)
    assert shown is not None
    for problem in re.findall(r'"(step .*?)"', shown.group(1)):
        assert problem in refused.value.problems, refused.value.problems
