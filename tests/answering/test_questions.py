"""A question that names a future day, or is not in English, gets one sentence saying how far to trust the answer."""

from __future__ import annotations

from datetime import UTC, date, datetime

from answering.questions import future_note, language_note, named_dates

ASKED = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def test_the_days_a_question_names_are_read_in_the_usual_spellings() -> None:
    assert named_dates("Who won on 2026-11-30 and on 3 December 2026?") == [date(2026, 11, 30), date(2026, 12, 3)]
    assert named_dates("What happens on Dec. 25, 2031?") == [date(2031, 12, 25)]
    assert named_dates("What happened on 31 February 2026 or in 2026?") == []  # not a day; a year alone is no day


def test_a_future_day_is_named_in_one_sentence() -> None:
    note = future_note("Who will win the final on 20 December 2026?", ASKED)
    assert note is not None and "20 December 2026" in note and "07 December 2026" in note and "\n" not in note
    assert future_note("Who won the final on 6 December 2026?", ASKED) is None
    assert future_note("Who won the final?", ASKED) is None


def test_a_question_in_another_language_is_told_to_ask_in_english() -> None:
    note = language_note("Quand le pont de Mill Lane rouvrira-t-il à la circulation ?")
    assert note is not None and "French" in note and "English" in note
    assert language_note("¿Quién ganó la liga este año?") is not None
    for english in ("What happens on December 25, 2031?", "Who won?", "How many jobs will Valmira cut in Rookmere?"):
        assert language_note(english) is None
