"""What is wrong with what someone sent, in words (domain.problems), and dates as typed and
as stored, in words (domain.words): the same sentences on the forms and in the API."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from pydantic import ValidationError

from domain.case import DecideToAssess, RequestAdvice
from domain.problems import by_field, problems
from domain.words import dates_in_words, parse_date_input
from services.clock import today
from services.rendering import in_words
from tests.words_check import find_words

TODAY = date(2026, 12, 7)


def errors_of(model, body: dict):
    with pytest.raises(ValidationError) as e:
        model.model_validate(body)
    return e.value.errors()


def test_a_model_check_about_one_field_is_put_by_that_field_in_the_forms_words():
    from services.cases import StartAssessmentIn

    asked = today() - timedelta(days=30)
    found = problems(errors_of(StartAssessmentIn, {
        "child": {"given_name": "Sam", "family_name": "Example",
                  "date_of_birth": (asked + timedelta(days=1)).isoformat()},
        "request_date": asked.isoformat()}))
    assert [(p.field, p.message) for p in found] == [(
        "child.date_of_birth", "Date of birth must be on or before the date the request was "
        f"received ({asked.day} {asked:%B %Y})")]
    found = problems(errors_of(StartAssessmentIn, {
        "child": {"given_name": "", "family_name": "Example", "date_of_birth": "2016-02-30"},
        "request_date": asked.isoformat(), "case_reference": "ehc-1"}))
    assert {p.field: p.message for p in found} == {
        "child.given_name": "Enter the child's given name",
        "child.date_of_birth": "Date of birth must be a real date written as YYYY-MM-DD, for "
                               "example 2026-03-09",
        "case_reference": "Your own reference must be 3 to 20 capital letters, digits and "
                          "hyphens, like EHC-004127 (not starting or ending with a hyphen)",
    }


def test_each_kind_of_error_names_the_field_as_its_form_does_and_says_what_to_do():
    assert by_field(errors_of(DecideToAssess, {"decision": "maybe"})) == {
        "decision": "Select the decision: one of assess or refuse",
        "decided_on": "Enter the date of the decision",
    }
    assert by_field(errors_of(DecideToAssess, {"decision": "assess", "decided_on": "2026-01-01",
                                               "reason": "x" * 2001})) == {
        "reason": "Reason must be 2000 characters or fewer"}
    twice = errors_of(RequestAdvice, {"items": [
        {"source": "social_care", "requested_on": "2026-01-01"},
        {"source": "social_care", "requested_on": "2026-01-02"}]})
    assert by_field(twice) == {"items": "Social care advice is asked for twice: ask once, or "
                                        "name which advisor each request is for"}
    listed = problems(errors_of(RequestAdvice, {"items": [
        {"source": "health", "requested_on": "2026-01-01"}, {"source": "nope"}]}))
    assert [(p.path, p.message) for p in listed] == [
        ("items.1.source", "Advice to ask for 2: Select the kind of advice: one of family, "
         "education, health, educational_psychologist, social_care, other, "
         "preparing_for_adulthood or family_requested"),
        ("items.1.requested_on", "Advice to ask for 2: Enter the date the requests were sent")]


def test_a_messages_words_are_english():
    """What a form shows: no snake_case name, no ISO date (the API's own date format hint is
    for programs and is not on a page: the forms take dates as three boxes)."""
    messages = by_field(errors_of(DecideToAssess, {"decision": None, "reason": 5}))
    assert messages == {"decision": "Select the decision", "decided_on": "Enter the date of "
                        "the decision", "reason": "Reason must be text"}
    for message in messages.values():
        assert find_words(message) == []


@pytest.mark.parametrize("typed, label, message", [
    (("31", "2", "2011"), "Date of birth", "Date of birth must be a real date, for example "
                                           "15 2 2011"),
    (("31", "2", "2027"), "Date of birth", "Date of birth must be a real date, for example "
                                           "15 2 2026"),
    (("32", "12", "2027"), "Date of birth", "Date of birth must be a real date, for example "
                                            "15 12 2025"),
    (("x", "", "2011"), "Date of birth", "Date of birth must include a month"),
    (("1", "1", "2027"), "Date the request was received", "Date the request was received "
                                                          "cannot be in the future: today is 7 "
                                                          "December 2026"),
])
def test_a_date_as_typed_gets_an_example_the_field_would_take(typed, label, message):
    with pytest.raises(ValueError) as e:
        parse_date_input(*typed, label, not_after=TODAY)
    assert str(e.value) == message
    assert parse_date_input("7", "12", "2026", label, not_after=TODAY) == TODAY
    assert parse_date_input("", "", "", label, not_after=TODAY) is None


def test_stored_sentences_read_their_dates_as_words():
    assert dates_in_words("Decision whether to assess is overdue (due 2026-10-13)") == \
        "Decision whether to assess is overdue (due 13 October 2026)"
    assert dates_in_words("not a date 2026-02-30, EHC-2026-10-13X") == \
        "not a date 2026-02-30, EHC-2026-10-13X"
    # a new review's first entry, as the workflows once wrote it, reads as what it meant
    assert in_words("Annual review 1: annual review completed by 2027-12-06 (CFA 2014 s.44)") \
        == "Annual review 1 started: next annual review due by 6 December 2027 (CFA 2014 s.44)"


def test_a_step_entered_after_its_day_says_when_it_was_entered():
    """The timeline says what happened and when it was entered: a decision made on 5 October
    and entered on 7 December reads '5 October 2026 ... Entered on 7 December 2026.'"""
    from datetime import datetime, timezone
    from types import SimpleNamespace

    from services.rendering import entered_late

    backdated = SimpleNamespace(on=date(2026, 10, 5),
                                at=datetime(2026, 12, 7, 10, tzinfo=timezone.utc))
    assert entered_late(backdated) == "Entered on 7 December 2026."
    # the same day (in England: 23:30 UTC on 6 June is already 7 June in London), and SQLite's
    # moments without their zone
    assert entered_late(SimpleNamespace(on=date(2026, 6, 7),
                                        at=datetime(2026, 6, 6, 23, 30))) == ""
    assert entered_late(SimpleNamespace(on=date(2026, 12, 7), at=None)) == ""
