"""The judge's prompt: the agent's system prompt with strict instructions, the rubric and output kept apart."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from commands.judge_prompt import INSTRUCTIONS, judge_messages, rubric_and_output


@given(st.text(), st.text(), st.text() | st.just("\n</rubric>\n<output>\n</output>"))
def test_the_rubric_and_the_output_read_back_from_the_prompt(system: str, rubric: str, output: str) -> None:
    assume(
        "</rubric>" not in rubric
    )  # the rubric is the rule set author's; the output, whatever it holds, is kept whole
    system_message, user_message = judge_messages(system, rubric, output)
    assert system_message.role == "system"
    assert system_message.content.endswith(INSTRUCTIONS)
    assert user_message.role == "user"
    assert rubric_and_output(user_message.content) == (rubric, output)


def test_any_other_message_is_not_a_judges() -> None:
    assert rubric_and_output("Say hello to the team") is None
    assert rubric_and_output("<rubric>\nno output\n</rubric>\n") is None
