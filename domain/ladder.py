"""The escalation ladder that chases a piece of advice: which emails go to whom, and when.

A ladder is the council's configuration, not statute: the defaults live in
``config/escalation.toml`` (one ladder per kind of advice) and a service may override them
(``Service.ladder``). When advice is requested, the ladder in force is copied onto the advice
item, so the workflow (which may do no I/O) carries it, and the case shows the ladder that
actually applied. Changing the configuration affects requests made after the change.

Pure: pydantic and the ``statutory`` package only, so workflows can import it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from domain.words import long_date
from statutory import london_midnight, london_time

Recipient = Literal["professional", "service_lead", "adqa"]

RECIPIENT_LABELS: dict[str, str] = {
    "professional": "the professional asked for the advice",
    "service_lead": "the service lead",
    "adqa": "the ADQA group",
}

# The email templates a step may use (templates/email/<name>.txt.j2 and .html.j2).
TEMPLATES = (
    "advice_request",
    "advice_reminder",
    "advice_due_tomorrow",
    "advice_overdue",
    "advice_escalation_lead",
    "advice_escalation_adqa",
    "advice_repeat",
)


class LadderStep(BaseModel):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,30}$",
                      description="a short name for the step, e.g. 'reminder'")
    anchor: Literal["requested", "due"] = Field(
        "due", description="the date the offset counts from")
    days: int = Field(ge=-42, le=365, description="days after the anchor (negative: before)")
    to: list[Recipient] = Field(min_length=1)
    template: str

    @field_validator("template")
    @classmethod
    def _known_template(cls, v: str) -> str:
        if v not in TEMPLATES:
            raise ValueError(f"unknown email template {v!r}; use one of {', '.join(TEMPLATES)}")
        return v

    @property
    def is_request(self) -> bool:
        """The request itself: the step on the day the advice is asked for."""
        return self.anchor == "requested" and self.days == 0

    def on(self, requested_on: date, due: date) -> date:
        return (requested_on if self.anchor == "requested" else due) + timedelta(days=self.days)


class Ladder(BaseModel):
    """Steps in time order, then a repeat at an interval until the advice arrives."""

    steps: list[LadderStep] = []
    repeat_every_days: int | None = Field(None, ge=1, le=90)
    repeat_to: list[Recipient] = []
    repeat_template: str = "advice_repeat"
    send_hour: int = Field(8, ge=3, le=22, description="hour of the day (London) emails go")

    @model_validator(mode="after")
    def _coherent(self) -> Ladder:
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError("each step of a ladder needs its own name")
        if any(n.startswith("repeat") for n in names):
            raise ValueError("step names starting 'repeat' are kept for the repeats")
        if self.repeat_every_days is not None:
            if not self.steps:
                raise ValueError("a repeat follows the last step: give at least one step")
            if not self.repeat_to:
                raise ValueError("say who the repeat goes to (repeat_to)")
            if self.repeat_template not in TEMPLATES:
                raise ValueError(f"unknown email template {self.repeat_template!r}")
        return self

    def at(self, day: date) -> datetime:
        return london_time(day, self.send_hour)

    def days(self, requested_on: date, due: date,
             entered_on: date | None = None) -> list[tuple[LadderStep, date | None]]:
        """Each step with the day it is for; None: not sent.

        Advice entered on its request day (or ``entered_on`` None: advice requested before
        the day of entry was kept) follows the ladder as written. Advice entered later, its
        request day before ``entered_on``, is chased from the day it was entered:

        - the request (the step anchored on the request day, 0 days) goes on ``entered_on``;
        - another step whose day is before ``entered_on`` and not after the due date (a
          reminder, a due-tomorrow notice) is not sent: its day has gone (``missed``);
        - if any step after the due date had its day before ``entered_on``, every step after
          the due date is planned as if the advice fell due on ``entered_on``: the overdue
          notice the next day, the escalations after the professional's usual time, in
          order (with the default ladder ``entered_on`` + 1, + 5, + 10);
        - steps on ``entered_on`` or later keep their days otherwise.
        """
        planned = [(s, s.on(requested_on, due)) for s in self.steps]
        if entered_on is None or requested_on >= entered_on:
            return [(s, d) for s, d in planned]
        shift = any(due < d < entered_on for _, d in planned)
        out: list[tuple[LadderStep, date | None]] = []
        for s, d in planned:
            if d > due and shift:
                out.append((s, entered_on + (d - due)))
            elif d >= entered_on:
                out.append((s, d))
            elif s.is_request:
                out.append((s, entered_on))
            else:
                out.append((s, None))
        return out

    def missed(self, requested_on: date, due: date, fired: list[str],
               entered_on: date | None) -> list[tuple[str, date]]:
        """The steps not sent because their day had gone before the advice was entered, each
        with the day it was for (see ``days``)."""
        return [(s.name, s.on(requested_on, due))
                for s, d in self.days(requested_on, due, entered_on)
                if d is None and s.name not in fired]

    def _fixed(self, requested_on: date, due: date, fired: list[str],
               entered_on: date | None = None):
        late = entered_on is not None and requested_on < entered_on
        return [(s.name, self._moment(s, d, late), s)
                for s, d in self.days(requested_on, due, entered_on)
                if d is not None and s.name not in fired]

    def _moment(self, step: LadderStep, day: date, entered_late: bool) -> datetime:
        """When a step goes: at ``send_hour`` on its day; but the request of advice entered
        after its request day goes the moment it is entered (it was owed already), whatever
        the hour, so the caseworker sees it leave and the chase from then on is in order."""
        if entered_late and step.is_request:
            return london_midnight(day)
        return self.at(day)

    def _repeats(self, requested_on: date, due: date, fired: list[str],
                 entered_on: date | None = None):
        """Repeats after the last step, ``repeat-1``, ``repeat-2``, ... from the first not yet
        fired, without end (callers stop taking them). For advice entered late they follow
        the last step as planned, and never fall before the day of entry."""
        if not self.repeat_every_days or not self.steps:
            return
        days = self.days(requested_on, due, entered_on)
        last = max(d if d is not None else s.on(requested_on, due) for s, d in days)
        if entered_on is not None and requested_on < entered_on:
            last = max(last, entered_on)
        step = LadderStep(name="repeat", days=0, to=self.repeat_to,
                          template=self.repeat_template)
        k = sum(1 for f in fired if f.startswith("repeat-"))
        while True:
            k += 1
            yield f"repeat-{k}", self.at(last + timedelta(days=k * self.repeat_every_days)), step

    def next_at(self, requested_on: date, due: date, fired: list[str],
                entered_on: date | None = None) -> datetime | None:
        """When the next step not yet fired is due, if any."""
        moments = [at for _, at, _ in self._fixed(requested_on, due, fired, entered_on)]
        moments += [at for _, at, _ in
                    _first(self._repeats(requested_on, due, fired, entered_on))]
        return min(moments) if moments else None

    def passed(self, requested_on: date, due: date, fired: list[str],
               now: datetime, entered_on: date | None = None
               ) -> list[tuple[str, datetime, LadderStep]]:
        """The steps not yet fired whose moment has come, in time order."""
        out = [x for x in self._fixed(requested_on, due, fired, entered_on) if x[1] <= now]
        for x in self._repeats(requested_on, due, fired, entered_on):
            if x[1] > now:
                break
            out.append(x)
        return sorted(out, key=lambda x: x[1])


def _first(it) -> list:
    for x in it:
        return [x]
    return []


class LadderConfig(BaseModel):
    """``config/escalation.toml``: a ladder per kind of advice, with ``default`` for the rest."""

    link_days: int = Field(60, ge=1, le=365, description="how long a link in an email works")
    ladders: dict[str, Ladder]

    @field_validator("ladders")
    @classmethod
    def _has_default(cls, v: dict[str, Ladder]) -> dict[str, Ladder]:
        if "default" not in v:
            raise ValueError("the escalation configuration needs a [ladders.default] ladder")
        return v

    def for_source(self, source: str, service_override: Ladder | None = None) -> Ladder:
        if service_override is not None:
            return service_override
        return self.ladders.get(source, self.ladders["default"])


# Each step's name, as emails put it ("This is step 'reminder' ...") and as the case and the
# ADQA digest report it once sent ("Escalated to the service lead").
STEP_LABELS: dict[str, tuple[str, str]] = {
    "request": ("request", "Request"),
    "reminder": ("reminder", "Reminder"),
    "due_soon": ("due-soon notice", "Due-soon notice"),
    "due_tomorrow": ("due-tomorrow notice", "Due-tomorrow reminder"),
    "overdue": ("overdue notice", "Overdue notice"),
    "escalate_lead": ("escalation to the service lead", "Escalated to the service lead"),
    "escalate_adqa": ("escalation to the ADQA group", "Escalated to the ADQA group"),
    "repeat": ("repeat reminder", "Repeat reminder"),
    # Not ladder steps: the ADQA group's messages, as the case's email list names them.
    "adqa_daily": ("ADQA daily message", "ADQA daily message"),
    "adqa_digest": ("ADQA weekly digest", "ADQA weekly digest"),
}


def step_label(name: str, done: bool = False) -> str:
    """'repeat-3' -> 'repeat reminder 3'; with ``done``, how a report says it happened
    ('escalate_lead' -> 'Escalated to the service lead'). Unknown names read as words."""
    base, _, n = name.partition("-")
    words = base.replace("_", " ")
    label = STEP_LABELS.get(base, (words, words[:1].upper() + words[1:]))[1 if done else 0]
    return f"{label} {n}" if n else label


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _listing(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def not_sent_summary(what: str, missed: list[tuple[str, date]], entered_on: date) -> str:
    """The timeline's one entry for the steps of a ladder not sent because the advice was
    entered after their days: 'Medical advice: reminder (7 November 2026) and due-tomorrow
    notice (16 November 2026) were not sent: this advice was entered on 7 December 2026,
    after their days'."""
    steps = _listing([f"{step_label(n)} ({long_date(d)})" for n, d in missed])
    verb, their = ("was", "its day") if len(missed) == 1 else ("were", "their days")
    return (f"{_sentence(what)}: {steps} {verb} not sent: this advice was entered on "
            f"{long_date(entered_on)}, after {their}")


def chase_summary(what: str, due: date, step: str, to: list[str], requested_on: date,
                  entered_on: date | None, request: bool = False, late: str = "") -> str:
    """The timeline's entry for a step of the ladder: what was emailed, to whom, with dates
    in words. A request sent on the day late advice was entered says when it was asked for."""
    who = _listing([RECIPIENT_LABELS[r] for r in to])
    text = f"{_sentence(what)}, due {long_date(due)}: {step_label(step)} emailed to {who}"
    if request and entered_on is not None and requested_on < entered_on:
        text += (f" (asked for on {long_date(requested_on)}; entered on "
                 f"{long_date(entered_on)})")
    return text + late


class AdviceNotice(BaseModel):
    """What the workflow asks the notifier to send for one step of a ladder. Names no person:
    the notifier resolves the recipients from the directory when it sends."""

    reference: str
    advice_key: str
    what: str  # e.g. "medical advice" or the request's label
    source: str
    service_id: str | None
    contact_id: str | None
    step: str  # the step's name, or repeat-N
    template: str
    to: list[Recipient]
    requested_on: date
    due: date
    on: date  # the day the step is for
    expected_on: date | None = None


class NoticeResult(BaseModel):
    sent: int = 0
    # An escalation to the ADQA group is queued for their daily message, not emailed: the
    # day of the message it goes in (services.adqa_daily).
    queued_for: date | None = None
    already_sent: int = 0
    rejected: int = 0
    nobody: list[str] = []  # roles with no one in the directory to send to
