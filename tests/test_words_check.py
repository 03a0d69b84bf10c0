"""The detector of tests/words_check.py: what it finds in a page's visible text, and what it
leaves alone. A page's title (the browser tab) is read; what the page does not show is not."""

from __future__ import annotations

import pytest

from tests.words_check import find_words, visible_text


@pytest.mark.parametrize("text, word", [
    ("Decision whether to assess is overdue (due 2026-10-13)", "2026-10-13"),
    ("hillside-primary-school — Not due yet", "hillside-primary-school"),
    ("Deadline assessment.draft_plan_target missed", "assessment.draft_plan_target"),
    ("Set proceed_with_outstanding_advice to go ahead", "proceed_with_outstanding_advice"),
    ("Stage: draft_served.", "draft_served"),
])
def test_it_finds_identifier_shaped_words_with_their_sentence(text, word):
    found = find_words(text)
    assert [f.word for f in found] == [word]
    assert found[0].sentence.startswith(text.split(".")[0][:20])


@pytest.mark.parametrize("text", [
    "Case EHC-46E2-4BY8-R1 was started on 13 October 2026.",
    "Write to sen-team@council.example or see https://www.gov.uk/children-with-special-"
    "educational-needs for more.",
    "Open /cases/EHC-46E2-4BY8/act/decide_to_assess to record it.",
    "A follow-up review, post-16, with the SENCo (co-ordinator), face-to-face; CFA 2014 s.44",
    "Reg 6(1)(a) e.g. the family's views; i.e. advice",
    "Change escalation.toml on the server",
])
def test_it_leaves_english_references_and_addresses_alone(text):
    assert find_words(text) == []


def test_visible_text_leaves_out_scripts_styles_attributes_and_typed_text():
    html = """<html><head><title>A case</title><style>.a_b{}</style></head><body>
      <input type="hidden" name="csrf_token" value="2026-01-01">
      <a href="/cases/x?done=decide_to_assess" class="govuk-link govuk-link--no-visited-state">Case</a>
      <textarea name="reason">typed_by_someone</textarea><code>[ladders.social_care]</code>
      <p>Due <strong>13 October 2026</strong>.</p><script>var due_on = "2026-10-13";</script>
      <td>2026-10-13</td></body></html>"""
    text = visible_text(html)
    assert "Due 13 October 2026." in text and "Case" in text and "A case" in text
    assert [f.word for f in find_words(text)] == ["2026-10-13"]


def test_a_subject_folded_onto_a_blank_line_is_found():
    from tests.words_check import FOLDED_BLANK_SUBJECT

    assert FOLDED_BLANK_SUBJECT.search(b"To: a@b.example\r\nSubject: \r\n Still overdue\r\n")
    assert not FOLDED_BLANK_SUBJECT.search(b"Subject: Advice for EHC-46E2-4BY8 is\r\n "
                                           b"still overdue\r\n")
