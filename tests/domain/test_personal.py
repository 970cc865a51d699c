"""Which event fields are personal: a table that a new field has to be added to, consciously."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from domain.catalog import event_classes
from domain.personal import SUBJECT, Fields, personal_fields, personal_plan, transform

PERSONAL_FIELDS: dict[str, set[str]] = {
    "AgentRunRequested": {"messages[].content"},
    "AgentRunSucceeded": {"output"},
    "ValidationRequested": {"output"},
    "JudgeConsulted": {"reply"},
    "ValidationCompleted": {"feedback", "results[].message"},
    "WorkflowInstanceStarted": {"inputs"},
    "StepCompleted": {"output"},
    "StepAttemptFailed": {"error"},
    "StepFailed": {"error"},
    "StepRetriedWithFeedback": {"feedback"},
    "NotificationRequested": {"recipient", "subject", "body"},
    "WorkflowFailed": {"reason"},
    "CompensationStarted": {"reason"},
    "SignalReceived": {"payload"},
}


def test_the_personal_fields_of_every_event_class_are_the_reviewed_ones() -> None:
    actual = {cls.__name__: set(personal_fields(cls)) for cls in event_classes() if personal_fields(cls)}
    assert actual == PERSONAL_FIELDS


def test_an_agent_runs_messages_seal_their_content_but_not_their_role() -> None:
    state: dict[str, Any] = {"messages": [{"role": "user", "content": "hello"}], "temperature": 0.2, "model": "m"}
    plan = personal_plan(next(c for c in event_classes() if c.__name__ == "AgentRunRequested"))
    assert isinstance(plan, Fields)
    sealed = transform(state, plan, lambda text: f"<{text}>")
    assert sealed == {"messages": [{"role": "user", "content": "<hello>"}], "temperature": 0.2, "model": "m"}
    assert state["messages"][0]["content"] == "hello"  # the input is not changed


json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in strings(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in strings(item)]
    return []


@given(json_values)
def test_inputs_seal_every_string_leaf_and_keep_keys_and_numbers(inputs: Any) -> None:
    plan = personal_plan(next(c for c in event_classes() if c.__name__ == "WorkflowInstanceStarted"))
    assert plan is not None
    sealed = transform({"inputs": inputs, "template_name": "t"}, plan, lambda text: "#" + text)
    assert sealed["template_name"] == "t"
    assert strings(sealed["inputs"]) == ["#" + s for s in strings(inputs)]
    assert transform(sealed, plan, lambda text: text[1:])["inputs"] == inputs


def test_subject_ids_are_pseudonymous_ids_not_addresses() -> None:
    assert SUBJECT.match("customer-4711")
    assert SUBJECT.match("a.b_c-1")
    for bad in ("", "ada@example.org", "two words", "a:b", "-lead", "x" * 65):
        assert not SUBJECT.match(bad), bad
