"""A case's event numbering and the due-soon and overdue alerts of its deadlines.

Pure (pydantic and ``statutory`` only), so it runs in the workflows, where ``now`` is
``workflow.now()`` (``workflows.casework``), and outside them: the plans import builds each
imported plan's first record with it (``domain.review_cycle.first_record``), as of the day of
the import, and writes it itself.

A milestone's alerts (and those of advice requested without an escalation ladder) are
``ALERT_LADDER``: due soon (``policy.due_soon_days`` before the due date) and overdue (the day
after), each at London midnight. Advice with a ladder is chased by its ladder instead
(``domain.ladder``), on the same clock.

**Entering history is not alerting.** An item that knows the day it was entered
(``entered_on``) and whose alert's day had come by then (a caseworker entering a case's
history step by step) does not alert at once: the alert waits to the end of the day of entry
(the next London midnight), so a step recorded later that day as done on time is never called
overdue. When it does fire it says when it was due and that it was noted late.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from domain.case import AdviceItem, Event, Milestone
from domain.words import long_date
from statutory import RULES, london_date, london_midnight

# (name, days from the due date); None: policy.due_soon_days before it.
ALERT_LADDER: tuple[tuple[str, int | None], ...] = (("due_soon", None), ("overdue", 1))


def next_event(case: Any, kind: str, on: date, at: datetime, actor: str | None, summary: str,
               data: dict[str, str]) -> Event:
    """The case's next event: numbered by the case's version, which it moves on."""
    case.version += 1
    return Event(seq=case.version, kind=kind, on=on, at=at, actor=actor, summary=summary,
                 data=data)


def _alerts(item: Milestone | AdviceItem, due_soon_days: int
            ) -> list[tuple[str, date, datetime]]:
    """The alerts of ``item`` not fired yet: (name, the day it is for, the moment it fires).
    An alert whose day had come by the day the item was entered fires at the end of that
    day instead (see the module's docstring)."""
    steps = []
    for name, offset in ALERT_LADDER:
        if name in item.alerts_fired:
            continue
        days = -due_soon_days if offset is None else offset
        day = item.due + timedelta(days=days)
        entered = getattr(item, "entered_on", None)
        moment = london_midnight(day if entered is None or day > entered
                                 else entered + timedelta(days=1))
        steps.append((name, day, moment))
    return steps


def ladder(item: Milestone | AdviceItem, due_soon_days: int) -> list[tuple[str, datetime]]:
    """The alerts of ``item`` not fired yet, each with its moment."""
    return [(name, moment) for name, _, moment in _alerts(item, due_soon_days)]


def alert_day(at: datetime, now: datetime) -> tuple[date, str]:
    """The day to record an alert on, and a note if it comes late. An alert fires at its
    moment; one whose day had already gone when it fired (the case or the advice entered
    backdated, or no worker running for a day) is recorded on the day it was noticed, and
    says so, so a timeline never shows a 'due soon' dated before a step entered later."""
    day, today = london_date(at), london_date(now)
    if day >= today:
        return day, ""
    return today, f"; noted on {long_date(today)}, after its day ({long_date(day)})"


def fire(case: Any, item: Milestone | AdviceItem, advice_key: str | None, now: datetime,
         at: datetime | None = None) -> Event | None:
    """Fire the alerts of ``item`` whose moment has come by ``now``: mark them all, and return
    the event of the latest (steps overtaken by a later one, as for a backdated item, are
    marked, not announced). ``at`` stamps the event (default ``now``). Not for advice with an
    escalation ladder (``CaseWorkflow._climb``)."""
    passed = [(name, day, moment) for name, day, moment in
              _alerts(item, case.policy.due_soon_days) if moment <= now]
    if not passed:
        return None
    for name, _, _ in passed:
        item.alerts_fired.append(name)
    name, day, moment = passed[-1]
    what = (f"Advice ({item.label or item.source.label})" if isinstance(item, AdviceItem)
            else RULES[item.rule_id].title)
    on, late = alert_day(moment, now)
    if not late and london_date(moment) > day:  # held back: entered after its day
        entered = item.entered_on
        late = (f"; noted on {long_date(on)}, as it was entered on {long_date(entered)}, "
                f"after its day ({long_date(day)})")
    data = {"deadline": item.key, "due": item.due.isoformat(),
            **({"advice": advice_key} if advice_key else {})}
    state = ("is due soon: due on " if name == "due_soon" else "is overdue: it was due on ")
    return next_event(case, f"deadline.{name}", on, now if at is None else at, None,
                      f"{what} {state}{long_date(item.due)}{late}", data)


def fire_as_of(case: Any, items: list[tuple[Milestone | AdviceItem, str | None]], day: date,
               at: datetime) -> list[Event]:
    """Fire every alert due by ``day``, as a workflow whose clock reads any moment of that
    (London) day would: alerts fall at London midnights, so those passed are exactly the ones
    whose day is ``day`` or earlier."""
    now = london_midnight(day)
    if any(isinstance(item, AdviceItem) and item.ladder is not None for item, _ in items):
        raise ValueError("advice on an escalation ladder is chased by the workflow, not here")
    events = [fire(case, item, key, now, at) for item, key in items]
    return [e for e in events if e is not None]
