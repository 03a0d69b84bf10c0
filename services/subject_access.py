"""A subject access export: everything held about one child, as one zip archive
(docs/data-protection.md, "Subject access").

The archive holds, for the child: their record (``child.json``), each case (an assessment or a
review cycle) with its deadlines, advice, exceptions and review facts, its timeline, its
letters, the advice professionals sent (text and files), the emails sent about it with their
bodies; each plan; the child's other plans (Early Help, CIN, CP, LAC); and the access log of
the child's record. Each part is JSON (for a program) and the whole is also written out in
words (``record.txt``), with a ``README.txt`` that says what each file is.

Parts are made by the functions in ``PARTS``, each given the child's record and the session;
another kind of record (case notes, for example) joins by adding its function there. Making
the archive is itself logged in the access log, as a subject access export.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from sqlmodel import Session, SQLModel, select

from domain.words import long_date, long_time
from services import access_log
from services.access_log import Viewer
from services.clock import today
from services.staff import Staff
from services.uploads import safe_filename
from store import tables as t


def _plain(row: SQLModel, *leave_out: str) -> dict:
    return {k: v for k, v in row.model_dump(mode="json").items() if k not in leave_out}


@dataclass
class Archive:
    """What is being put together: files by path, and the account of it in words."""

    files: dict[str, bytes] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)
    readme: list[str] = field(default_factory=list)

    def json(self, path: str, data: object, about: str) -> None:
        self.files[path] = json.dumps(data, indent=2, ensure_ascii=False,
                                      default=str).encode()
        self.readme.append(f"{path}: {about}")

    def raw(self, path: str, data: bytes, about: str | None = None) -> None:
        self.files[path] = data
        if about:
            self.readme.append(f"{path}: {about}")

    def say(self, *lines: str) -> None:
        self.words.extend(lines)


@dataclass(frozen=True)
class Subject:
    child: t.Child
    cases: list[t.Case]
    plans: list[t.Plan]


def _child_part(session: Session, s: Subject, a: Archive) -> None:
    c = s.child
    a.json("child.json", _plain(c), "the child's record")
    a.say("THE CHILD'S RECORD", f"Name: {c.given_name} {c.family_name}",
          f"Date of birth: {long_date(c.date_of_birth)}",
          f"The council's own reference: {c.council_reference or 'none'}",
          f"Record made: {long_time(c.created_at)}")
    if c.anonymised_on:
        a.say(f"Anonymised under the retention rule on {long_date(c.anonymised_on)}")
    a.say("")


def _case_part(session: Session, s: Subject, a: Archive) -> None:
    for case in s.cases:
        ref = case.reference
        where = f"cases/{safe_filename(ref)}"

        def rows(model, order):
            return [_plain(r) for r in session.exec(
                select(model).where(model.case_reference == ref).order_by(order)).all()]

        review = session.get(t.Review, ref)
        a.json(f"{where}/case.json", {
            "case": _plain(case, "policy"),
            "review": _plain(review) if review else None,
            "deadlines": rows(t.Milestone, t.Milestone.due),
            "advice": rows(t.AdviceItem, t.AdviceItem.due),
            "exceptions": rows(t.CaseException, t.CaseException.starts_on),
        }, f"case {ref}: its stage, deadlines, advice and exceptions")
        events = session.exec(select(t.CaseEvent).where(t.CaseEvent.case_reference == ref)
                              .order_by(t.CaseEvent.seq)).all()
        a.json(f"{where}/timeline.json", [_plain(e) for e in events],
               f"case {ref}: every step, in order")
        kind = "Annual review" if case.kind == "review" else "Assessment"
        a.say(f"{kind.upper()} {ref}", f"Requested: {long_date(case.request_date)}",
              f"Open: {'yes' if case.is_open else 'no'}"
              + (f", closed {long_date(case.closed_on)}" if case.closed_on else ""))
        if case.close_reason:
            a.say(f"Why it closed: {case.close_reason}")
        a.say("Timeline:", *(f"  {long_date(e.on)}: {e.summary}"
                             + (f" ({e.actor})" if e.actor else "") for e in events))
        for letter in session.exec(select(t.Letter).where(t.Letter.case_reference == ref)):
            a.raw(f"{where}/letters/{safe_filename(letter.kind)}.txt", letter.body.encode(),
                  f"case {ref}: a decision letter dated {long_date(letter.dated)}")
            a.say(f"Letter dated {long_date(letter.dated)} ({letter.citation}): in "
                  f"{where}/letters/")
        subs = session.exec(select(t.AdviceSubmission)
                            .where(t.AdviceSubmission.case_reference == ref)
                            .order_by(t.AdviceSubmission.created_at)).all()
        for sub in subs:
            docs = session.exec(select(t.AdviceDocument)
                                .where(t.AdviceDocument.submission_id == sub.id)).all()
            a.json(f"{where}/advice/{sub.id}.json",
                   {**_plain(sub), "documents": [_plain(d, "content") for d in docs]},
                   f"case {ref}: advice sent through the secure page")
            a.say(f"Advice sent {long_time(sub.created_at)} by {sub.submitted_by or 'someone'}"
                  f" ({sub.kind}): {sub.text}")
            for doc in docs:
                a.raw(f"{where}/advice/{sub.id}-documents/{doc.id}-{safe_filename(doc.filename)}",
                      doc.content, f"case {ref}: a document sent with advice, as sent")
        emails = session.exec(select(t.EmailMessage)
                              .where(t.EmailMessage.case_reference == ref)
                              .order_by(t.EmailMessage.created_at, t.EmailMessage.id)).all()
        a.json(f"{where}/emails.json", [_plain(e, "claimed_by") for e in emails],
               f"case {ref}: the emails sent about it, with their text")
        for e in emails:
            a.say(f"Email made {long_time(e.created_at)} to {e.recipient_address}: {e.subject}"
                  f" ({e.status})", *(f"    {line}" for line in e.body_text.splitlines()))
        a.say("")


def _plan_part(session: Session, s: Subject, a: Archive) -> None:
    for plan in s.plans:
        a.json(f"plans/{safe_filename(plan.reference)}.json", _plain(plan),
               f"plan {plan.reference}: its dates, placement and status")
        a.say(f"EHC PLAN {plan.reference}", f"Issued: {long_date(plan.issued_on)}",
              f"Status: {plan.status}" + (f", ended {long_date(plan.ended_on)}"
                                          if plan.ended_on else ""), "")
    others = session.exec(select(t.LinkedPlan).where(t.LinkedPlan.child_id == s.child.id)
                          .order_by(t.LinkedPlan.started_on)).all()
    if others:
        a.json("other_plans.json", [_plain(p) for p in others],
               "the child's other plans (Early Help, Child in Need, Child Protection, "
               "looked-after)")
        a.say("OTHER PLANS", *(f"  {p.kind.replace('_', ' ')} from {long_date(p.started_on)}"
                               + (f" to {long_date(p.ended_on)}" if p.ended_on else "")
                               for p in others), "")


def _access_part(session: Session, s: Subject, a: Archive) -> None:
    rows = access_log.access_rows(session, s.child.id)
    a.json("access_log.json", [_plain(r) for r in rows],
           "who viewed or exported the child's record, newest first")
    a.say("WHO VIEWED OR EXPORTED THE RECORD (newest first)",
          *(f"  {long_time(r.at)}: {r.who}: {access_log.KINDS.get(r.kind, r.kind)}"
            + (f" {r.reference}" if r.reference else "") + (f" ({r.what})" if r.what else "")
            for r in rows), "")


# The parts of the archive, in order. Case notes (a later change) join here.
PARTS: list[Callable[[Session, Subject, Archive], None]] = [
    _child_part, _case_part, _plan_part, _access_part]

README = """Everything held about one child by {council}'s EHC case service
================================================================

Made {made} by {who}, as a subject access export.
Child's record id: {child_id}

Every file is in two forms: JSON (for a program to read; dates are YYYY-MM-DD and times are
UTC) and, all together, in words in record.txt. The files:

{files}

record.txt: all of the above in words, dates in full.

What is not here: the case engine (Temporal) keeps each case's workflow history while the
case is open and for a set time after; it holds dates and references only, sealed with the
council's key, and no names.
"""


def build_archive(*, session: Session, staff: Staff | Viewer | None, child_id: str,
                  council: str, route: str) -> tuple[str, bytes]:
    """The archive's file name and bytes; logged as a subject access export."""
    child = access_log.child_record(session=session, child_id=child_id)  # 404 if none
    row = session.get(t.Child, child.id)
    assert row is not None
    subject = Subject(
        child=row,
        cases=list(session.exec(select(t.Case).where(t.Case.child_id == child_id)
                                .order_by(t.Case.request_date, t.Case.reference)).all()),
        plans=list(session.exec(select(t.Plan).where(t.Plan.child_id == child_id)
                                .order_by(t.Plan.issued_on, t.Plan.reference)).all()))
    # Logged first, so the archive's own access log shows this export.
    access_log.record_access(session=session, staff=staff, child_id=child_id, reference=None,
                             kind="subject access", what="Everything held, as one archive",
                             route=route)
    archive = Archive()
    for part in PARTS:
        part(session, subject, archive)
    now = datetime.now(timezone.utc)
    viewer = access_log.viewer_of(staff)
    archive.raw("README.txt", README.format(
        council=council, made=long_time(now), who=viewer.who, child_id=child_id,
        files="\n".join(archive.readme)).encode())
    archive.raw("record.txt", "\n".join(archive.words).encode())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in sorted(archive.files.items()):
            z.writestr(f"subject-access/{path}", data)
    return f"subject-access-{child_id}-{today().isoformat()}.zip", buf.getvalue()
