"""The figures as pages: the statistics dashboard and the ADQA quarterly report show what the
statistics API returns; the ADQA group's recommendations are kept per quarter; the public
summary suppresses small numbers. Over real HTTP, against cases written by the recorder."""

from __future__ import annotations

import re
from datetime import date, timedelta
from html import unescape

from markupsafe import escape
from sqlmodel import Session

from services.statistics import shown_count, shown_percent
from store import tables as t
from store.db import engine_for, session_for
from domain.case import AdviceSource
from tests.conftest import free_port, settings_for
from tests.http import PASSWORD, add_staff, serve_app
from tests.test_auth import client_like, csrf_of, sign_in
from tests.test_worklist import adv, assessment, ms

Q3 = (date(2026, 7, 1), date(2026, 9, 30))


def test_small_numbers_are_suppressed():
    assert [shown_count(n) for n in (0, 1, 4, 5, 1234)] == [
        "0", "fewer than 5", "fewer than 5", "5", "1,234"]
    assert shown_percent(0, 0) is None
    assert shown_percent(10, 10) == "100%" and shown_percent(0, 12) == "0%"
    assert shown_percent(5, 10) == "50%"
    assert shown_percent(3, 10) == "not shown"  # 3 on time: a small number
    assert shown_percent(8, 10) == "not shown"  # 2 late: a small number given away
    assert shown_percent(6, 11) == "55%"


def build_q3(db_url: str) -> None:
    """Advice due in 2026-Q3 from two services: Paediatrics 1 of 3 on time, Social care 0 of 2
    (one still outstanding), education 1 of 1; and one 2026-Q2 item, on time (year zero)."""
    with Session(engine_for(db_url)) as s:
        s.add(t.Service(id="svc-p", name="Community Paediatrics", agency="health"))
        s.add(t.Service(id="svc-s", name="Children's Disability Team", agency="social_care"))
        s.add(t.Service(id="svc-e", name="Oak Primary School", agency="education"))
        s.commit()
    due = date(2026, 8, 14)
    assessment(db_url, "EHC-Q3A", milestones=[ms("final_plan_due", "assessment.final_plan_due",
                                                 date(2027, 1, 1))], advice=[
        adv("health", AdviceSource.HEALTH, due, received=due, service_id="svc-p"),
        adv("social_care", AdviceSource.SOCIAL_CARE, due, received=due + timedelta(days=3),
            service_id="svc-s"),
        adv("education", AdviceSource.EDUCATION, due, received=due - timedelta(days=1),
            service_id="svc-e"),
    ])
    assessment(db_url, "EHC-Q3B", milestones=[ms("final_plan_due", "assessment.final_plan_due",
                                                 date(2027, 1, 2))], advice=[
        adv("health", AdviceSource.HEALTH, due, received=due + timedelta(days=1),
            service_id="svc-p"),
        adv("social_care", AdviceSource.SOCIAL_CARE, due, service_id="svc-s"),
    ])
    assessment(db_url, "EHC-Q3C", milestones=[ms("final_plan_due", "assessment.final_plan_due",
                                                 date(2027, 1, 3))], advice=[
        adv("health", AdviceSource.HEALTH, date(2026, 9, 30), received=date(2026, 10, 2),
            service_id="svc-p"),
    ])
    assessment(db_url, "EHC-Q2A", milestones=[ms("final_plan_due", "assessment.final_plan_due",
                                                 date(2026, 12, 1))], advice=[
        adv("health", AdviceSource.HEALTH, date(2026, 5, 1), received=date(2026, 5, 1),
            service_id="svc-p"),
    ])


ROW = r'<th scope="row" class="govuk-table__header">{}(?:<span[^>]*>(.*?)</span>)?</th>(.*?)</tr>'


def row(html: str, label: str) -> list[str]:
    """The cells of the first table row headed ``label``."""
    m = re.search(ROW.format(re.escape(str(escape(label)))), html, re.S)
    assert m, label
    return [c.strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", m.group(2), re.S)]


def note(html: str, label: str) -> str | None:
    """The note under the label of the first table row headed ``label`` (which date counts)."""
    m = re.search(ROW.format(re.escape(str(escape(label)))), html, re.S)
    assert m, label
    return unescape(m.group(1)) if m.group(1) else None


def text_of(html: str) -> str:
    """The page's words, tags taken out and spaces collapsed."""
    return unescape(" ".join(re.sub(r"<[^>]+>", " ", html).split()))


async def test_the_adqa_quarterly_report_and_its_recommendations(sqlite_url):
    build_q3(sqlite_url)
    add_staff(sqlite_url, "manager", email="chair@council.example", name="Pat Chair")
    settings = settings_for(sqlite_url, "adqa", temporal_address=f"127.0.0.1:{free_port()}")
    async with serve_app(settings, None, role="manager") as http:
        page = await http.get("/adqa/quarterly", params={"quarter": "2026-Q3"})
        assert page.status_code == 200, page.text
        html = page.text
        # counted, on time, late, still outstanding, % on time, % excluding exceptions
        assert row(html, "Health") == ["3", "1", "2", "0", "33.3%", "33.3%"]
        assert row(html, "Social care") == ["2", "0", "2", "1", "0.0%", "0.0%"]
        assert row(html, "Education") == ["1", "1", "0", "0", "100.0%", "100.0%"]
        assert row(html, "All agencies") == ["6", "2", "4", "1", "33.3%", "33.3%"]
        # the same figures as the statistics API
        api = (await http.get("/api/statistics/timeliness/advice", params={
            "from": "2026-07-01", "to": "2026-09-30", "group_by": "agency"})).json()
        health = next(g for g in api["groups"] if g["label"] == "Health")
        assert (health["figures"]["counted"], health["figures"]["on_time"]) == (3, 1)
        worst = re.search(r"Services with the most late advice</h2>\s*<ol[^>]*>(.*?)</ol>",
                          html, re.S).group(1)
        # As many late each: the one with advice still outstanding comes first.
        assert worst.index("Children&#39;s Disability Team: 2 late of 2, 1 still outstanding") \
            < worst.index("Community Paediatrics: 2 late of 3")
        assert "Trend since 2026-Q2" in html  # the first quarter with advice: year zero
        assert row(html, "2026-Q2")[:2] == ["1", "1"]
        assert "<svg" in html and 'role="img"' in html
        assert "None recorded yet for 2026-Q3" in html
        bad = await http.get("/adqa/quarterly", params={"quarter": "Q3 2026"})
        assert bad.status_code == 422 and "YYYY-Qn" in bad.text

        async with client_like(http) as chair:
            await sign_in(chair, "chair@council.example", PASSWORD)
            csrf = csrf_of((await chair.get("/adqa/quarterly?quarter=2026-Q3")).text)
            text = "Health to report the paediatric backlog plan to the next meeting."
            r = await chair.post("/adqa/quarterly/2026-Q3/recommendations",
                                 data={"recommendations": text})
            assert r.status_code == 403  # no CSRF token
            r = await chair.post("/adqa/quarterly/2026-Q3/recommendations",
                                 data={"recommendations": text, "csrf_token": csrf})
            assert r.status_code == 303
            shown = (await chair.get(r.headers["location"])).text
            assert text in shown and "Pat Chair" in shown
            assert "None recorded yet" not in shown
            other = (await chair.get("/adqa/quarterly?quarter=2026-Q2")).text
            assert text not in other
        with session_for(sqlite_url) as s:
            assert s.get(t.AdqaRecommendation, "2026-Q3").text == text


async def test_the_dashboard_shows_the_apis_figures(sqlite_url):
    build_q3(sqlite_url)
    settings = settings_for(sqlite_url, "stats", temporal_address=f"127.0.0.1:{free_port()}")
    async with serve_app(settings, None, role="manager") as http:
        params = {"from": "2026-07-01", "to": "2026-09-30"}
        page = await http.get("/statistics", params=params)
        assert page.status_code == 200, page.text
        api = (await http.get("/api/statistics/timeliness", params=params)).json()
        advice = next(m for m in api["measures"] if m["measure"] == "advice")
        cells = row(page.text, f"c. {advice['title']} ({advice['citation']})")
        assert cells[:4] == [str(advice["figures"][k]) for k in
                             ("counted", "on_time", "late", "late_open")]
        assert "/api/exports/sen2?from=2026-07-01&amp;to=2026-09-30&amp;format=csv" in page.text
        # Every figure says which date puts an item in the period, as the API does.
        for m in api["measures"]:
            label = (f"{m['council_measure']}. " if m["council_measure"] else "") + \
                f"{m['title']} ({m['citation']})"
            assert note(page.text, label).startswith(m["counted_by"]), label
        assert advice["counted_by"] == "Counted by the day the advice was due"
        final = next(m for m in api["measures"] if m["measure"] == "final_plans")
        assert final["counted_by"] == ("Counted by the day the final plan was due (20 weeks "
                                       "after the request)")
        dfe = (await http.get("/api/statistics/dfe", params=params)).json()
        assert dfe["counted_by"] == {
            "final_plans": "Counted by the day the final plan was issued",
            "requests": "Counted by the day the request was received",
            "decisions": "Counted by the day the decision whether to assess was made"}
        assert api["review_outcomes"]["counted_by"] == "Counted by the day the decision was made"
        words = text_of(page.text)
        assert "Final plans issued Counted by the day the final plan was issued" in words
        assert "f. Annual review outcomes Counted by the day the decision was made." in words
        # e and DfE's final plans count the same plans by different dates: said beside both.
        assert note(page.text, f"e. {final['title']} ({final['citation']})") == (
            final["counted_by"] + ". Not the same count as the DfE's “Final plans issued” "
            "below, which is counted by the day the final plan was issued")
        assert ("Final plans: here counted by the day the final plan was issued; in measure e "
                "above, counted by the day the final plan was due (20 weeks after the "
                "request).") in words
        schema = (await http.get("/openapi.json")).json()["components"]["schemas"]
        assert "counted_by" in schema["MeasureFigures"]["properties"]
        assert schema["DfeReport"]["properties"]["counted_by"]["description"]

        bad = await http.get("/statistics", params={"from": "2026-09-30", "to": "2026-07-01"})
        assert bad.status_code == 422 and "There is a problem" in bad.text
        assert ("The end date, 1 July 2026, is before the start date, 30 September 2026. Give "
                "the earlier date as the start date") in text_of(bad.text)
        # the page's dates are typed in GOV.UK date boxes; a link may carry YYYY-MM-DD
        bad = await http.get("/statistics", params={"from": "30/9/2026"})
        assert bad.status_code == 422
        assert ("The start date in the link (30/9/2026) is not a date this page can read: type "
                "it in the boxes") in text_of(bad.text)
        typed = await http.get("/statistics", params={
            "from-day": "1", "from-month": "7", "from-year": "2026",
            "to-day": "30", "to-month": "9", "to-year": "2026"})
        assert typed.status_code == 200
        assert "From 1 July 2026 to 30 September 2026" in text_of(typed.text)
        wrong = await http.get("/statistics", params={
            "from-day": "31", "from-month": "2", "from-year": "2026"})
        assert wrong.status_code == 422
        assert "Start date must be a real date, for example" in text_of(wrong.text)
        assert 'name="from-day" type="text" value="31"' in wrong.text  # kept to correct


async def test_a_date_that_does_not_exist_is_named_on_the_page_and_in_the_api(sqlite_url):
    settings = settings_for(sqlite_url, "stats", temporal_address=f"127.0.0.1:{free_port()}")
    said = ("The start date 31 February 2026 does not exist: February 2026 has 28 days. Write "
            "it as 2026-02-28 or pick another day")
    async with serve_app(settings, None, role="manager") as http:
        page = await http.get("/statistics", params={"from": "2026-02-31", "to": "2026-06-30"})
        assert page.status_code == 422
        words = text_of(page.text)
        # the page writes the date to choose in words (its dates are typed in date boxes)
        said_on_page = said.replace("Write it as 2026-02-28", "Write it as 28 February 2026")
        assert words.count(said_on_page) == 2  # in the summary and by the start date's boxes
        assert 'href="#from-day"' in page.text
        assert 'name="from-day" type="text" value="31"' in page.text  # kept to correct
        assert "YYYY-MM-DD" not in words
        for path in ("/api/statistics/timeliness", "/api/statistics/timeliness/advice",
                     "/api/statistics/review-outcomes", "/api/statistics/dfe",
                     "/api/exports/sen2"):
            r = await http.get(path, params={"from": "2026-02-31", "to": "2026-06-30"})
            assert r.status_code == 422, path
            assert r.json() == {"detail": said, "code": "invalid_input"}, path
        r = await http.get("/api/statistics/dfe", params={"from": "2026-01-01",
                                                          "to": "2026-13-01"})
        assert r.json()["detail"] == (
            "The end date “2026-13-01” does not exist: there is no month 13, the months are 01 "
            "to 12. Write it as YYYY-MM-DD, for example 2026-10-01")
        r = await http.get("/api/statistics/timeliness", params={"as_of": "2026-04-31"})
        assert r.status_code == 422 and r.json()["detail"] == (
            "The as-of date 31 April 2026 does not exist: April 2026 has 30 days. Write it as "
            "2026-04-30 or pick another day")
        both = await http.get("/statistics", params={"from": "2024-02-30", "to": "soon"})
        words = text_of(both.text)
        assert "The end date in the link (soon) is not a date this page can read" in words
        both = await http.get("/statistics", params={"from": "2024-02-30"})
        assert ("The start date 30 February 2024 does not exist: February 2024 has 29 days. "
                "Write it as 29 February 2024 or pick another day") in text_of(both.text)


async def test_the_default_period_includes_the_quarter_so_far(sqlite_url, monkeypatch):
    """On 7 December 2026, with nothing asked: 1 January 2026 to today, the page and the API
    alike, the fourth quarter so far included (advice due in October counts)."""
    on = date(2026, 12, 7)
    monkeypatch.setattr("api.stats_pages.today", lambda: on)
    monkeypatch.setattr("api.statistics.today", lambda: on)
    build_q3(sqlite_url)
    assessment(sqlite_url, "EHC-Q4A", advice=[
        adv("health", AdviceSource.HEALTH, date(2026, 10, 15), received=date(2026, 10, 14),
            service_id="svc-p")])
    settings = settings_for(sqlite_url, "stats", temporal_address=f"127.0.0.1:{free_port()}")
    async with serve_app(settings, None, role="manager") as http:
        api = (await http.get("/api/statistics/timeliness/advice",
                              params={"as_of": "2026-12-07"})).json()
        assert (api["from"], api["to"]) == ("2026-01-01", "2026-12-07")
        assert [(q["quarter"], q["starts_on"], q["ends_on"], q["figures"]["counted"])
                for q in api["quarters"]] == [
            ("2026-Q1", "2026-01-01", "2026-03-31", 0), ("2026-Q2", "2026-04-01", "2026-06-30", 1),
            ("2026-Q3", "2026-07-01", "2026-09-30", 6), ("2026-Q4", "2026-10-01", "2026-12-07", 1)]
        page = await http.get("/statistics")
        assert page.status_code == 200, page.text
        words = text_of(page.text)
        assert ("From 1 January 2026 to today (7 December 2026): the last four quarters, this "
                "one so far.") in words
        boxes = dict(re.findall(r'name="((?:from|to)-(?:day|month|year))" type="text" '
                                r'value="([^"]*)"', page.text))
        assert boxes == {"from-day": "1", "from-month": "1", "from-year": "2026",
                         "to-day": "7", "to-month": "12", "to-year": "2026"}
        quarters = [c for c in re.findall(r'<th scope="row" class="govuk-table__header">'
                                          r'([^<]*)', page.text) if "2026" in c]
        assert quarters[:4] == ["2026-Q1", "2026-Q2", "2026-Q3",
                                "1 October 2026 to today (quarter so far)"]
        advice = next(m for m in (await http.get("/api/statistics/timeliness")).json()[
            "measures"] if m["measure"] == "advice")
        assert row(page.text, f"c. {advice['title']} ({advice['citation']})")[:2] == [
            str(advice["figures"]["counted"]), str(advice["figures"]["on_time"])]
        assert advice["figures"]["counted"] == 8  # the quarter so far's advice among them


async def test_the_public_summary_needs_no_sign_in_and_hides_small_numbers(sqlite_url):
    build_q3(sqlite_url)
    settings = settings_for(sqlite_url, "public", temporal_address=f"127.0.0.1:{free_port()}")
    async with serve_app(settings, None, role=None) as anonymous:
        page = await anonymous.get("/summary")
        assert page.status_code == 200
        html = page.text
        assert "How we are doing with EHC plans" in html
        assert 'href="/directory"' not in html and "Sign out" not in html
        assert "EHC-Q3A" not in html  # aggregate figures only
        body = (await anonymous.get("/api/public/summary")).json()
        for f in body["figures"]:
            assert not re.fullmatch(r"[1-4]", f["count"]), f
        assert "fewer than 5" in body["suppression"]
