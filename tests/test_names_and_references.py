"""Names and references that carry more than they should (issue 16, findings 5, 6 and 8):

- a name is one line, trimmed and not blank, for a child, a staff account, a contact, an ADQA
  member (domain.names), refused by the field as the form labels it;
- a reference given for a case holds none of the child's names, date of birth, or any date, a
  phone number or an address (domain.identifiers), in the API and the start form alike;
- an email's recipient is written by the standard library, so a name with a comma, quotes,
  accents or (kept before names were checked) a line break reaches the real SMTP server as one
  quoted name and one address, and an address that cannot be written is marked rejected with
  the reason, never left "sending".
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from pydantic import ValidationError
from sqlmodel import Session, select

from domain.identifiers import (
    date_in_reference,
    is_reference,
    new_reference,
    personal_data_in_reference,
)
from domain.ladder import AdviceNotice
from domain.names import clean_name
from domain.problems import sentence_for
from services.cases import StartAssessmentIn
from services.clock import today
from services.mail import Outbox, Outgoing, mailbox
from services.notify import Notifier
from store import tables as t
from store.db import engine_for
from tests.conftest import settings_for
from tests.http import PASSWORD, serve_app

BORN = date(2014, 8, 19)


def start_body(ref: str | None = None, given: str = "Ada", family: str = "Pemberton",
               born: date = BORN) -> dict:
    return {"child": {"given_name": given, "family_name": family,
                      "date_of_birth": born.isoformat()},
            "request_date": (today() - timedelta(days=3)).isoformat(), "case_reference": ref}


def problems_of(body: dict) -> dict[str, str]:
    try:
        StartAssessmentIn.model_validate(body)
    except ValidationError as exc:
        return {p.field: p.message for p in map(sentence_for, exc.errors())}
    return {}


# --- names ----------------------------------------------------------------------------------------


def test_a_name_is_one_line_trimmed_and_not_blank():
    assert clean_name("  Zoë O'Brien-Smith ", what="Full name", max_length=120) == \
        "Zoë O'Brien-Smith"
    assert clean_name("Nasrin\u200cdokht", what="Full name", max_length=120)  # ZWNJ: a spelling
    for bad in ("Ada\nLovelace", "Ada\r\nBcc: x@evil.example", "Ada\x00", "Ada\tL",
                "Ada\u2028L", "\u202eAda"):
        with pytest.raises(ValueError):
            clean_name(bad, what="Full name", max_length=120)
    assert clean_name("   ", what="Role", max_length=10, required=False) is None
    # A child's name parts: a blank one (spaces only) is refused, not stored as ''.
    assert problems_of(start_body(given="   ")) == {
        "child.given_name": "Enter the child's given name"}
    assert problems_of(start_body(family="Pem\nberton")) == {
        "child.family_name": "Child's family name must be on one line: remove the line break"}
    assert StartAssessmentIn.model_validate(start_body(given=" Ada ")).child.given_name == "Ada"
    # Optional, so a blank council person id is none (NULL), not ''.
    body = start_body()
    body["child"]["council_reference"] = "   "
    assert StartAssessmentIn.model_validate(body).child.council_reference is None


# --- references -----------------------------------------------------------------------------------


def test_a_reference_holds_no_personal_data():
    who = {"given_name": "Zoë", "family_name": "Pemberton", "date_of_birth": BORN}
    for ref, found in [
        ("PEMBERTON-20140819", "the child's family name"),
        ("EHC-PEMBERTO", ""),  # not the whole name: a part of 4+ letters must appear whole
        ("EHC-ZOE-1", "the child's given name"), ("ZOE1", "the child's given name"),
        ("EHC-ZOEY", ""),  # a 3-letter name inside a longer word is not refused
        ("EHC-20140819", "the child's date of birth"), ("EHC-19082014", "the child's date of birth"),
        ("R-190814", "the child's date of birth"), ("R-140819", "the child's date of birth"),
        ("R-08192014", "the child's date of birth"), ("R-1982014", "the child's date of birth"),
        ("EHC-2014-08-19", "the child's date of birth"),
        ("EHC-07700900123", "a phone number"), ("EHC-447700900123", "a phone number"),
        ("EHC-004127", ""), ("P0019283", ""), ("NBC-2026-000123", ""), ("EHC-7QK2-M4TD", ""),
    ]:
        assert personal_data_in_reference(ref, **who) == found, ref
    assert personal_data_in_reference("jb@example.org", **who) == "an email address"
    assert [date_in_reference(r) for r in ("EHC-20150101", "X-01012015", "X-010115",
                                           "EHC-2015-01-01", "EHC-004127", "EHC-131399",
                                           "EHC-12345678")] == \
        ["20150101", "01012015", "010115", "20150101", "", "", ""]
    # References the system makes never spell the child's name.
    for _ in range(200):
        ref = new_reference(given_name="Maya", family_name="Tate", date_of_birth=BORN)
        assert is_reference(ref) and not personal_data_in_reference(
            ref, given_name="Maya", family_name="Tate", date_of_birth=BORN)


def test_a_reference_given_for_a_request_is_refused_by_its_field():
    assert problems_of(start_body("PEMBERTON-20140819")) == {"case_reference": (
        "Your own reference contains the child's family name. References go into emails to "
        "professionals and must hold no personal data: use your council's case number, or "
        "leave it blank and one will be made for you")}
    assert "digits that read as a date" in problems_of(start_body("EHC-01012015"))[
        "case_reference"]
    assert "date of birth" in problems_of(start_body("A-19-08-14"))["case_reference"]
    assert problems_of(start_body("EHC-004127")) == {}


# --- over HTTP: the API, the start form, the directory and the accounts -----------------------------


async def test_the_api_and_the_forms_refuse_them_by_the_field(sqlite_url, ts_env):
    settings = settings_for(sqlite_url, "names")
    async with serve_app(settings, ts_env.client, role="admin") as http:
        for body, field, words in [
            (start_body("PEMBERTON-20140819"), "case_reference", "family name"),
            (start_body(given="  "), "child.given_name", "Enter the child's given name"),
            (start_body(given="Ada\r\nX"), "child.given_name", "one line"),
        ]:
            r = await http.post("/api/assessments", json=body)
            assert r.status_code == 422, r.text
            errors = {e["field"]: e["message"] for e in r.json()["errors"]}
            assert words in errors[field], errors
        with Session(engine_for(sqlite_url)) as s:
            assert s.exec(select(t.Child)).all() == []  # nothing stored, blank or not

        r = await http.post("/api/directory/services", json={"name": "Paediatrics",
                                                             "agency": "health"})
        assert r.status_code == 201, r.text
        service = r.json()["id"]
        for url, body in [
            (f"/api/directory/services/{service}/contacts",
             {"name": "Dr Jo\nBcc: x@evil.example", "email": "jo@nhs.example"}),
            ("/api/directory/adqa-members", {"name": "Ann\x00Lee", "email": "ann@x.example"}),
            ("/api/directory/services", {"name": "Bad\r\nService", "agency": "health"}),
            ("/api/admin/users", {"name": "Sam\nSmith", "email": "sam@council.example",
                                  "role": "caseworker", "password": PASSWORD}),
        ]:
            r = await http.post(url, json=body)
            assert r.status_code == 422, (url, r.text)
            assert "name" in {e["field"] for e in r.json().get("errors", [])} or \
                "name" in r.text, r.text
            assert re.search(r"one line|hidden character", r.text), r.text
        r = await http.post(f"/api/directory/services/{service}/contacts",
                            json={"name": "  Dr Jo Smith, MBBS  ", "email": "jo@nhs.example"})
        assert r.status_code == 201 and r.json()["name"] == "Dr Jo Smith, MBBS"

        # The start form (an API token needs no CSRF token): the reference by its field.
        r = await http.post("/assessments/new", data={
            "given_name": "Ada", "family_name": "Pemberton", "date_of_birth-day": "19",
            "date_of_birth-month": "8", "date_of_birth-year": "2014", "request_source": "parent",
            **{f"request_date-{k}": str(v) for k, v in
               (("day", today().day), ("month", today().month), ("year", today().year))},
            "case_reference": "pemberton-20140819"})
        assert r.status_code == 422, r.text
        assert re.search(r"Your own reference contains the child(&#39;|&#x27;|')s family name",
                         r.text), r.text


# --- email: names quoted by the standard library, a bad address rejected ----------------------------


def test_a_recipient_is_written_by_the_standard_library():
    assert str(mailbox("Smith, Jo", "jo@x.example")) == '"Smith, Jo" <jo@x.example>'
    assert mailbox("Evil\r\nBcc: v@evil.example", "a@x.example").display_name == \
        "Evil Bcc: v@evil.example"
    assert str(mailbox(None, "a@x.example")) == "a@x.example"
    for address in ("not an address", "a@b\nBcc: c@evil.example", "jö@example.org"):
        with pytest.raises(ValueError):
            mailbox("x", address)


async def test_names_reach_the_smtp_server_quoted_and_a_bad_address_is_rejected(
        sqlite_url, smtp_server):
    """Contacts kept in the directory (one from before names were checked, with a line break)
    are emailed through the notifier as it sends a ladder step; then the outbox alone with an
    address that cannot be written."""
    settings = settings_for(sqlite_url, "names-mail", smtp_host=smtp_server.host,
                            smtp_port=smtp_server.port)
    names = {"comma@agency.example": "Smith, Jo",
             "quotes@agency.example": 'Dr "Rhys" O\'Neil',
             "accents@agency.example": "Zoë Ångström",
             "old@agency.example": "Dr Old\r\nBcc: victim@evil.example"}
    with Session(engine_for(sqlite_url)) as s:
        s.add(t.Service(id="svc", name="Paediatrics, North", agency="health",
                        team_email="team@agency.example"))
        s.flush()
        for i, (address, name) in enumerate(names.items()):
            s.add(t.Contact(id=f"c{i}", service_id="svc", name=name, email=address,
                            is_lead=i == 1))
        s.commit()
    notifier = Notifier(settings)
    on = today()
    for i in (0, 2, 3):
        result = await notifier.send(AdviceNotice(
            reference="EHC-NAME-TEST", advice_key=f"health{i}", what="medical advice",
            source="health", service_id="svc", contact_id=f"c{i}", step="request",
            template="advice_request", to=["professional", "service_lead"],
            requested_on=on, due=on + timedelta(days=42), on=on), "test#1")
        assert result.sent == 2 and result.rejected == 0, result
    got = smtp_server.received
    assert sorted({r.to for r in got}) == sorted(names)  # the lead once per step
    for r in got:
        assert r.rcpt_tos == [r.to]  # one recipient: nobody added by a name
        to = r.message["To"].addresses
        assert len(to) == 1 and to[0].addr_spec == r.to
        assert to[0].display_name == " ".join(names[r.to].split()), to
        assert r.message["Bcc"] is None and r.message["Cc"] is None
        assert "evil" not in "\n".join(x for x in r.header_lines() if not x.startswith(
            ("To:", " ")))
    raw = next(r for r in got if r.to == "comma@agency.example").header_lines()
    assert 'To: "Smith, Jo" <comma@agency.example>' in raw
    with Session(engine_for(sqlite_url)) as s:
        assert {m.status for m in s.exec(select(t.EmailMessage))} == {"sent"}

    count = len(got)
    sent = await Outbox(settings).send_once(Outgoing(
        key="bad-address", to_address="someone at agency.example", to_name="Someone",
        subject="Advice requested", text="Body", html=None, template="advice_request",
        recipient_role="professional"), "test#1")
    assert sent.status == "rejected"
    with Session(engine_for(sqlite_url)) as s:
        row = s.exec(select(t.EmailMessage).where(t.EmailMessage.key == "bad-address")).one()
        assert row.status == "rejected" and "cannot be written" in row.last_error
    assert len(smtp_server.received) == count
