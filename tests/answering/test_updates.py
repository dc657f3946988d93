"""What an update replaced stays out of an answer's way: sentences that report a replaced value."""

from __future__ import annotations

from answering.prompt import Passage
from answering.updates import current_statements

FOLLOW_UP = (
    "QUILLHAVEN, Oct 18 (VLW) - The closure of the Eastgate bridge in Quillhaven will now begin on November 3, "
    "to avoid clashing with other roadworks in the area. The bridge had been due to close on October 27.\n\n"
    '"We listened to businesses," said a council spokesperson. The closure begins on November 3 and is planned '
    "to last 10 weeks. When the works were first announced, the council said they would take 8 weeks, and the "
    "cost was originally put at 2.1 million."
)
QUESTION = "When does the closure of the Eastgate bridge in Quillhaven begin?"


def test_sentences_that_report_a_replaced_value_are_left_out() -> None:
    passage = Passage(FOLLOW_UP, "Quillhaven bridge works pushed back", url="https://a.example/1")
    shown = current_statements(QUESTION, passage)
    assert "November 3" in shown.text and "October 27" not in shown.text
    assert "originally" not in shown.text  # "was originally put at": the replaced cost goes too
    # The current statements, their paragraphs and everything but the text are kept.
    assert '"We listened to businesses," said a council spokesperson.' in shown.text
    assert shown.text.count("\n\n") == 1
    assert (shown.title, shown.url) == (passage.title, passage.url)


def test_a_question_about_the_earlier_state_keeps_them() -> None:
    passage = Passage(FOLLOW_UP, "Quillhaven bridge works pushed back")
    for question in ("When had the Eastgate bridge originally been due to close?", "What was the first date given?"):
        assert current_statements(question, passage).text == FOLLOW_UP


def test_a_passage_is_never_emptied_and_plain_text_is_untouched() -> None:
    only_past = Passage("The bridge had been due to close on October 27. It had been planned for years.")
    assert current_statements(QUESTION, only_past) == only_past
    plain = Passage("The Mill Lane bridge in Wynhallow closes on October 8 for 11 weeks. Buses will divert.")
    assert current_statements(QUESTION, plain) is plain
