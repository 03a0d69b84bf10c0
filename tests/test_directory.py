"""The directory of who owes advice, over real HTTP on SQLite and PostgreSQL: its API (every
rule, and every refusal with a message that says what to fix and changes nothing), its
GOV.UK pages and their forms, and the demo seed. The directory needs no Temporal."""

from __future__ import annotations

import asyncio
import html as htmllib
import re
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlsplit

import httpx
from sqlmodel import Session, func, select

from services.clock import today
from cli.main import main as ehc
from cli.seed import DEMO_ADQA, DEMO_SERVICES, seed_demo
from store import tables as t
from store.db import engine_for
from domain.ladder import Ladder
from tests.conftest import free_port, settings_for
from tests.http import serve_app

API = "/api/directory"


@asynccontextmanager
async def serve(db_url: str, **settings_extra):
    # No Temporal: point the app at a port nothing listens on, so it gives up at once.
    settings = settings_for(db_url, "directory", temporal_address=f"127.0.0.1:{free_port()}",
                            **settings_extra)
    async with serve_app(settings, None) as http:
        yield http


async def ok(response: httpx.Response, status: int = 200):
    assert response.status_code == status, response.text
    return response.json()


async def problem(response: httpx.Response, status: int, *fragments: str) -> str:
    """The answer's sentence holds each fragment; a 422's fragment may instead be where the
    problem is, for a program (an error's ``field``, or its ``loc`` as a dotted path)."""
    assert response.status_code == status, response.text
    body = response.json()
    detail = body["detail"]
    where = [w for e in body.get("errors", []) for w in (
        e["field"], ".".join(str(p) for p in e["loc"] if p not in ("body", "query", "path")))]
    for fragment in fragments:
        assert fragment in detail or fragment in where, (fragment, detail, where)
    return detail


def count(db_url: str, model, *where) -> int:
    with Session(engine_for(db_url)) as s:
        return s.exec(select(func.count()).select_from(model).where(*where)).one()


def service_row(db_url: str, service_id: str) -> t.Service:
    with Session(engine_for(db_url)) as s:
        return s.get(t.Service, service_id)


async def add_service(http, name: str, agency: str = "education", **extra) -> dict:
    return await ok(await http.post(f"{API}/services",
                                    json={"name": name, "agency": agency, **extra}), 201)


async def add_contact(http, service_id: str, name: str, **extra) -> dict:
    email = extra.pop("email", f"{name.split()[0].lower()}@school.example")
    return await ok(await http.post(f"{API}/services/{service_id}/contacts",
                                    json={"name": name, "email": email, **extra}), 201)


async def defaults(http, agency: str) -> list[str]:
    listed = await ok(await http.get(f"{API}/services",
                                     params={"agency": agency, "include_inactive": "true"}))
    return [s["name"] for s in listed if s["is_default"]]


GOOD_LADDER = {
    "send_hour": 9,
    "steps": [
        {"name": "request", "anchor": "requested", "days": 0, "to": ["professional"],
         "template": "advice_request"},
        {"name": "escalate_lead", "days": 3, "to": ["service_lead", "adqa"],
         "template": "advice_escalation_lead"},
    ],
    "repeat_every_days": 14,
    "repeat_to": ["service_lead"],
}


# --- the API ------------------------------------------------------------------------------------


async def test_services_contacts_and_members_are_created_read_and_changed(db_url):
    async with serve(db_url) as http:
        school = await add_service(http, "  Riverside Academy ", "education",
                                   team_email="send@riverside.example")
        assert school["name"] == "Riverside Academy"  # trimmed
        assert (school["agency"], school["agency_label"]) == ("education", "Education")
        assert (school["team_email"], school["is_default"], school["active"]) == (
            "send@riverside.example", False, True)
        assert school["contacts"] == [] and school["lead"] is None and school["ladder"] is None
        await add_service(http, "Community Paediatrics", "health")
        await add_service(http, "Aardvark Children's Team", "social_care")

        listed = await ok(await http.get(f"{API}/services"))
        # in the agencies' order (education, health, social care, ...), then by name
        assert [s["name"] for s in listed] == [
            "Riverside Academy", "Community Paediatrics", "Aardvark Children's Team"]
        only_health = await ok(await http.get(f"{API}/services", params={"agency": "health"}))
        assert [s["name"] for s in only_health] == ["Community Paediatrics"]

        sid = school["id"]
        grace = await add_contact(http, sid, "Grace Okafor", role="SENCo", is_lead=True)
        assert (grace["service_id"], grace["is_lead"], grace["active"]) == (sid, True, True)
        await add_contact(http, sid, "Adam Ball", email="a.ball@riverside.example")

        read = await ok(await http.get(f"{API}/services/{sid}"))
        assert [c["name"] for c in read["contacts"]] == ["Grace Okafor", "Adam Ball"]  # lead 1st
        assert read["lead"]["name"] == "Grace Okafor" and read["contact_count"] == 2
        listed = await ok(await http.get(f"{API}/services", params={"agency": "education"}))
        assert (listed[0]["lead"]["email"], listed[0]["contact_count"]) == (
            "grace@school.example", 2)

        changed = await ok(await http.patch(f"{API}/services/{sid}", json={
            "name": "Riverside Academy Trust", "team_email": None}))
        assert (changed["name"], changed["team_email"]) == ("Riverside Academy Trust", None)
        assert len(changed["contacts"]) == 2  # the rest as it was
        contact = await ok(await http.patch(f"{API}/contacts/{grace['id']}", json={
            "email": "g.okafor@riverside.example", "role": None}))
        assert (contact["email"], contact["role"], contact["is_lead"]) == (
            "g.okafor@riverside.example", None, True)
        with Session(engine_for(db_url)) as s:
            row = s.get(t.Contact, grace["id"])
            assert (row.email, row.role, row.name) == (
                "g.okafor@riverside.example", None, "Grace Okafor")

        member = await ok(await http.post(f"{API}/adqa-members", json={
            "name": "Karen Doyle", "email": "karen.doyle@council.example",
            "role": "Assistant Director, Education"}), 201)
        assert member["active"] is True
        await ok(await http.post(f"{API}/adqa-members", json={
            "name": "Michael Osei", "email": "michael.osei@council.example"}), 201)
        members = await ok(await http.get(f"{API}/adqa-members"))
        assert [m["name"] for m in members] == ["Karen Doyle", "Michael Osei"]
        renamed = await ok(await http.patch(f"{API}/adqa-members/{member['id']}",
                                            json={"name": "Karen Doyle-Smith"}))
        assert (renamed["name"], renamed["email"]) == (
            "Karen Doyle-Smith", "karen.doyle@council.example")

        openapi = await ok(await http.get("/openapi.json"))
        ops = {(m, p) for p, item in openapi["paths"].items() if p.startswith(API)
               for m in item}
        assert ops == {("get", f"{API}/services"), ("post", f"{API}/services"),
                       ("get", f"{API}/services/{{service_id}}"),
                       ("patch", f"{API}/services/{{service_id}}"),
                       ("post", f"{API}/services/{{service_id}}/contacts"),
                       ("patch", f"{API}/contacts/{{contact_id}}"),
                       ("get", f"{API}/adqa-members"), ("post", f"{API}/adqa-members"),
                       ("patch", f"{API}/adqa-members/{{member_id}}")}
        assert all(openapi["paths"][p][m]["summary"] and openapi["paths"][p][m]["tags"] ==
                   ["directory"] for m, p in ops)


async def test_bad_input_gets_a_4xx_that_says_what_to_fix_and_changes_nothing(db_url):
    async with serve(db_url) as http:
        school = await add_service(http, "Northbridge Primary School", "education")
        sid = school["id"]
        grace = await add_contact(http, sid, "Grace Okafor")
        member = await ok(await http.post(f"{API}/adqa-members", json={
            "name": "Karen Doyle", "email": "Karen.Doyle@council.example"}), 201)
        before = (count(db_url, t.Service), count(db_url, t.Contact), count(db_url, t.AdqaMember))

        svc = f"{API}/services"
        await problem(await http.post(svc, json={"name": "X", "agency": "schools"}), 422,
                      "'schools' is not an agency: use education, health, social_care, "
                      "educational_psychology or other")
        await problem(await http.post(svc, json={"name": "X", "agency": ""}), 422,
                      "Select the agency")
        await problem(await http.post(svc, json={"name": "   ", "agency": "health"}), 422,
                      "Enter the name of the service")
        await problem(await http.post(svc, json={"name": "X" * 121, "agency": "health"}), 422,
                      "The name of the service must be 120 characters or fewer")
        await problem(await http.post(svc, json={"agency": "health"}), 422,
                      "Enter the name")
        for bad in ("dco.example", "dco@", "dco @nhs.example", "dco@nhs", "a@b@nhs.example"):
            await problem(await http.post(svc, json={"name": "DCO", "agency": "health",
                                                     "team_email": bad}), 422,
                          "Enter the team's email address in the correct format, "
                          "like name@example.org")
        await problem(await http.post(svc, json={"name": "DCO", "agency": "health",
                                                 "lead": "someone"}), 422, "lead")
        # a clash of names ignores case and spaces around
        await problem(await http.post(svc, json={"name": " northbridge PRIMARY school ",
                                                 "agency": "education"}), 409,
                      "A service called 'Northbridge Primary School' is already in the "
                      "directory: choose another name")
        await problem(await http.get(svc, params={"agency": "schools"}), 422,
                      "'schools' is not an agency")

        # changes
        other = await add_service(http, "Riverside Academy")
        before = (before[0] + 1, *before[1:])
        await problem(await http.patch(f"{svc}/{other['id']}",
                                       json={"name": "NORTHBRIDGE primary school"}), 409,
                      "already in the directory")
        await problem(await http.patch(f"{svc}/{sid}", json={"name": None}), 422,
                      "Name cannot be empty (null): leave it out to keep it as it is")
        await problem(await http.patch(f"{svc}/{sid}", json={"agency": "police"}), 422,
                      "'police' is not an agency")
        await problem(await http.patch(f"{svc}/{sid}", json={"team_email": "nope"}), 422,
                      "Enter the team's email address in the correct format")

        # contacts
        await problem(await http.post(f"{svc}/{sid}/contacts", json={
            "name": "Tom Hughes", "email": "tom.hughes"}), 422,
            "Enter an email address in the correct format, like name@example.org")
        await problem(await http.post(f"{svc}/{sid}/contacts", json={"email": "t@x.example"}),
                      422, "Enter the name")
        await problem(await http.post(f"{svc}/{sid}/contacts", json={
            "name": "", "email": "t@x.example"}), 422, "Enter their full name")
        await problem(await http.patch(f"{API}/contacts/{grace['id']}", json={"email": None}),
                      422, "Email address cannot be empty (null)")
        await problem(await http.patch(f"{API}/contacts/{grace['id']}",
                                       json={"email": "grace@"}), 422,
                      "Enter an email address in the correct format")

        # ADQA: one address once, ignoring case; a former member is reactivated, not re-added
        adqa = f"{API}/adqa-members"
        await problem(await http.post(adqa, json={"name": "K Doyle",
                                                  "email": "karen.doyle@COUNCIL.example"}), 409,
                      "Karen.Doyle@council.example is already in the ADQA group (as Karen "
                      "Doyle): check the address")
        await problem(await http.post(adqa, json={"name": "K", "email": "karen"}), 422,
                      "Enter an email address in the correct format")
        second = await ok(await http.post(adqa, json={"name": "Michael Osei",
                                                      "email": "m.osei@council.example"}), 201)
        before = (*before[:2], before[2] + 1)
        await problem(await http.patch(f"{adqa}/{second['id']}",
                                       json={"email": "karen.doyle@council.example"}), 409,
                      "already in the ADQA group")
        await ok(await http.patch(f"{adqa}/{member['id']}", json={"active": False}))
        await problem(await http.post(adqa, json={"name": "Karen Doyle",
                                                  "email": "karen.doyle@council.example"}), 409,
                      "belonged to a former ADQA member, Karen Doyle: reactivate that member")

        # unknown ids: 404 naming what to check
        for method, path, body, what in (
            ("GET", f"{svc}/nope", None, "No service has the id 'nope': check the id"),
            ("PATCH", f"{svc}/nope", {"name": "Y"}, "No service has the id 'nope'"),
            ("POST", f"{svc}/nope/contacts", {"name": "A B", "email": "a@b.example"},
             "No service has the id 'nope'"),
            ("PATCH", f"{API}/contacts/nope", {"name": "Y"},
             "No contact has the id 'nope': check the id"),
            ("PATCH", f"{adqa}/nope", {"name": "Y"},
             "No ADQA member has the id 'nope': check the id"),
        ):
            r = await http.request(method, path, json=body)
            await problem(r, 404, what)

        assert (count(db_url, t.Service), count(db_url, t.Contact),
                count(db_url, t.AdqaMember)) == before
        with Session(engine_for(db_url)) as s:
            assert s.get(t.Service, sid).name == "Northbridge Primary School"
            assert s.get(t.Contact, grace["id"]).email == "grace@school.example"
            assert s.get(t.AdqaMember, second["id"]).email == "m.osei@council.example"


async def test_one_lead_per_service(db_url):
    async with serve(db_url) as http:
        a = await add_service(http, "Northbridge Primary School")
        b = await add_service(http, "Riverside Academy")
        priya = await add_contact(http, a["id"], "Priya Shah", is_lead=True)
        other_lead = await add_contact(http, b["id"], "Grace Okafor", is_lead=True)
        tom = await add_contact(http, a["id"], "Tom Hughes", is_lead=True)  # takes over

        def leads(service_id: str) -> list[str]:
            with Session(engine_for(db_url)) as s:
                return sorted(c.name for c in s.exec(select(t.Contact).where(
                    t.Contact.service_id == service_id, t.Contact.is_lead)))

        assert leads(a["id"]) == ["Tom Hughes"]
        assert leads(b["id"]) == ["Grace Okafor"]  # another service's lead is untouched
        await ok(await http.patch(f"{API}/contacts/{priya['id']}", json={"is_lead": True}))
        assert leads(a["id"]) == ["Priya Shah"]
        read = await ok(await http.get(f"{API}/services/{a['id']}"))
        assert read["lead"]["id"] == priya["id"]
        assert [c["is_lead"] for c in read["contacts"]] == [True, False]

        # a lead who is deactivated stops being the lead; a deactivated contact cannot lead
        gone = await ok(await http.patch(f"{API}/contacts/{priya['id']}", json={"active": False}))
        assert (gone["active"], gone["is_lead"]) == (False, False)
        assert leads(a["id"]) == [] and (await ok(await http.get(
            f"{API}/services/{a['id']}")))["lead"] is None
        await problem(await http.patch(f"{API}/contacts/{priya['id']}", json={"is_lead": True}),
                      409, "Priya Shah is deactivated, so they cannot be the service lead: "
                      "reactivate them (active: true) first")
        await problem(await http.patch(f"{API}/contacts/{tom['id']}",
                                       json={"is_lead": True, "active": False}), 409,
                      "Tom Hughes is deactivated")
        assert leads(a["id"]) == []
        back = await ok(await http.patch(f"{API}/contacts/{priya['id']}",
                                         json={"active": True, "is_lead": True}))
        assert (back["active"], back["is_lead"]) == (True, True)
        assert leads(a["id"]) == ["Priya Shah"] and leads(b["id"]) == [other_lead["name"]]
        # un-leading leaves the service without a lead
        await ok(await http.patch(f"{API}/contacts/{priya['id']}", json={"is_lead": False}))
        assert leads(a["id"]) == []

        # many requests at once, each making someone else the lead: one wins
        staff = [await add_contact(http, a["id"], f"Teacher {i}") for i in range(6)]
        answers = await asyncio.gather(*(
            http.patch(f"{API}/contacts/{c['id']}", json={"is_lead": True}) for c in staff[:3]
        ), *(http.post(f"{API}/services/{a['id']}/contacts", json={
            "name": f"New teacher {i}", "email": f"new{i}@school.example", "is_lead": True})
            for i in range(3)))
        assert sorted(r.status_code for r in answers) == [200] * 3 + [201] * 3, \
            [r.text for r in answers]
        assert len(leads(a["id"])) == 1 and leads(b["id"]) == [other_lead["name"]]


async def test_one_default_service_per_agency(db_url):
    async with serve(db_url) as http:
        a = await add_service(http, "Northbridge Primary School", is_default=True)
        dco = await add_service(http, "Designated Clinical Officer team", "health",
                                is_default=True)
        b = await add_service(http, "Riverside Academy", is_default=True)  # takes over
        assert await defaults(http, "education") == ["Riverside Academy"]
        assert await defaults(http, "health") == ["Designated Clinical Officer team"]

        await ok(await http.patch(f"{API}/services/{a['id']}", json={"is_default": True}))
        assert await defaults(http, "education") == ["Northbridge Primary School"]
        # moving a default to another agency makes it that agency's only default
        moved = await ok(await http.patch(f"{API}/services/{b['id']}",
                                          json={"agency": "health", "is_default": True}))
        assert moved["agency"] == "health"
        assert await defaults(http, "health") == ["Riverside Academy"]
        assert await defaults(http, "education") == ["Northbridge Primary School"]

        # a deactivated service is no one's default, and cannot be made it
        gone = await ok(await http.patch(f"{API}/services/{a['id']}", json={"active": False}))
        assert (gone["active"], gone["is_default"]) == (False, False)
        assert await defaults(http, "education") == []
        await problem(await http.patch(f"{API}/services/{a['id']}", json={"is_default": True}),
                      409, "'Northbridge Primary School' is deactivated, so it cannot be the "
                      "default Education service: reactivate it (active: true) first")
        await ok(await http.patch(f"{API}/services/{dco['id']}", json={"is_default": True}))
        assert await defaults(http, "health") == ["Designated Clinical Officer team"]

        # many requests at once, each making a different service the default: one wins
        many = [await add_service(http, f"Social care team {i}", "social_care")
                for i in range(6)]
        answers = await asyncio.gather(*(http.patch(f"{API}/services/{s['id']}",
                                                    json={"is_default": True}) for s in many))
        assert [r.status_code for r in answers] == [200] * 6, [r.text for r in answers]
        assert count(db_url, t.Service, t.Service.agency == "social_care",
                     t.Service.is_default) == 1


async def test_deactivated_rows_stay(db_url):
    async with serve(db_url) as http:
        school = await add_service(http, "Riverside Academy", team_email="s@r.example")
        grace = await add_contact(http, school["id"], "Grace Okafor", is_lead=True)
        member = await ok(await http.post(f"{API}/adqa-members", json={
            "name": "Karen Doyle", "email": "karen@council.example"}), 201)

        await ok(await http.patch(f"{API}/services/{school['id']}", json={"active": False}))
        assert await ok(await http.get(f"{API}/services")) == []
        everything = await ok(await http.get(f"{API}/services",
                                             params={"include_inactive": "true"}))
        assert [(s["name"], s["active"]) for s in everything] == [("Riverside Academy", False)]
        read = await ok(await http.get(f"{API}/services/{school['id']}"))
        assert [c["id"] for c in read["contacts"]] == [grace["id"]]  # its people are kept
        back = await ok(await http.patch(f"{API}/services/{school['id']}", json={"active": True}))
        assert back["active"] is True and back["is_default"] is False

        await ok(await http.patch(f"{API}/adqa-members/{member['id']}", json={"active": False}))
        assert await ok(await http.get(f"{API}/adqa-members")) == []
        everyone = await ok(await http.get(f"{API}/adqa-members",
                                           params={"include_inactive": "true"}))
        assert [(m["email"], m["active"]) for m in everyone] == [("karen@council.example", False)]
        await ok(await http.patch(f"{API}/adqa-members/{member['id']}", json={"active": True}))
        assert len(await ok(await http.get(f"{API}/adqa-members"))) == 1
        assert (count(db_url, t.Service), count(db_url, t.Contact),
                count(db_url, t.AdqaMember)) == (1, 1, 1)
        # nothing can be deleted
        assert (await http.delete(f"{API}/services/{school['id']}")).status_code == 405


async def test_a_service_may_override_its_ladder(db_url):
    async with serve(db_url) as http:
        dco = await add_service(http, "Designated Clinical Officer team", "health",
                                ladder=GOOD_LADDER)
        stored = service_row(db_url, dco["id"]).ladder
        ladder = Ladder.model_validate(stored)
        assert [s.name for s in ladder.steps] == ["request", "escalate_lead"]
        assert (ladder.send_hour, ladder.repeat_every_days, ladder.steps[1].anchor) == (9, 14,
                                                                                       "due")
        assert dco["ladder"]["steps"][1]["to"] == ["service_lead", "adqa"]

        def bad(**change) -> dict:
            return {**GOOD_LADDER, **change}

        step = GOOD_LADDER["steps"][0]
        for ladder_in, message in (
            (bad(steps=[{**step, "template": "nope"}]),
             "Unknown email template 'nope'; use one of advice_request"),
            (bad(steps=[step, step]), "Each step of a ladder needs its own name"),
            (bad(repeat_to=[]), "Say who the repeat goes to (repeat_to)"),
            (bad(steps=[{**step, "to": ["the_head"]}]), "ladder.steps.0.to.0"),
            (bad(steps=[{**step, "days": 400}]), "ladder.steps.0.days"),
            (bad(send_hour=2), "ladder.send_hour"),
            (bad(steps=[{**step, "name": "repeat_x"}]),
             "Step names starting 'repeat' are kept for the repeats"),
        ):
            await problem(await http.post(f"{API}/services", json={
                "name": "Community Paediatrics", "agency": "health", "ladder": ladder_in}),
                422, message)
            await problem(await http.patch(f"{API}/services/{dco['id']}",
                                           json={"ladder": ladder_in}), 422, message)
        assert count(db_url, t.Service) == 1
        assert service_row(db_url, dco["id"]).ladder == stored  # unchanged by the bad ones

        cleared = await ok(await http.patch(f"{API}/services/{dco['id']}",
                                            json={"ladder": None}))
        assert cleared["ladder"] is None and service_row(db_url, dco["id"]).ladder is None
        again = await ok(await http.patch(f"{API}/services/{dco['id']}",
                                          json={"ladder": {"steps": []}}))
        assert again["ladder"]["steps"] == []  # an empty ladder: nobody is chased by email


# --- the pages ------------------------------------------------------------------------------------


def summary_links(html: str) -> list[str]:
    start = html.index('govuk-error-summary__list')
    return re.findall(r'<a href="(#[^"]+)"', html[start:html.index("</ul>", start)])


async def test_directory_pages_render(db_url):
    async with serve(db_url) as http:
        school = await add_service(http, "Northbridge Primary School", is_default=True,
                                   team_email="senco@northbridge.example")
        await add_contact(http, school["id"], "Priya Shah", is_lead=True, role="SENCo")
        await add_contact(http, school["id"], "Tom Hughes")
        gone = await add_service(http, "Old Pupil Referral Unit")
        await ok(await http.patch(f"{API}/services/{gone['id']}", json={"active": False}))
        eps = await add_service(http, "Educational Psychology Service",
                                "educational_psychology", ladder=GOOD_LADDER)
        await ok(await http.post(f"{API}/adqa-members", json={
            "name": "Karen Doyle", "email": "karen@council.example",
            "role": "Assistant Director, Education"}), 201)

        r = await http.get("/directory")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        html = r.text
        for text in ("Northbridge Primary School", "Priya Shah", "Educational Psychology "
                     "Service", "Old Pupil Referral Unit", "Deactivated", "Default",
                     "Karen Doyle", "Assistant Director, Education", '<h3 class="govuk-heading-s"'
                     ' id="agency-education">Education</h3>', 'href="/directory/adqa"',
                     f'href="/directory/services/{school["id"]}"'):
            assert text in html, text
        assert re.search(r"Priya Shah</td>\s*<td[^>]*>2</td>", html)  # lead, contacts count
        assert html.index("Education</h3>") < html.index("Educational psychology</h3>")
        assert 'aria-current="page"' in html.split("Directory</a>")[0][-300:] or \
            "govuk-service-navigation__item--active" in html

        page = await http.get(f"/directory/services/{school['id']}")
        assert page.status_code == 200
        for text in ("<h1 class=\"govuk-heading-l\">Northbridge Primary School</h1>",
                     "Priya Shah", "Tom Hughes", "senco@northbridge.example", "SENCo",
                     f'action="/directory/services/{school["id"]}/contacts"',
                     '<label class="govuk-label govuk-label--s" for="contact-email">',
                     'Make lead<span class="govuk-visually-hidden">: Tom Hughes</span>',
                     "The council&#39;s ladder for educational advice"):
            assert text in page.text, text
        own = await http.get(f"/directory/services/{eps['id']}")
        assert "Its own ladder, instead of the council&#39;s" in own.text
        assert "Then every 14 days" in own.text

        new = await http.get("/directory/services/new")
        assert new.status_code == 200
        for text in ('<label class="govuk-label govuk-label--s" for="name">',
                     'for="team-email"', 'value="educational_psychology"', "Add service",
                     'type="email"'):
            assert text in new.text, text
        adqa = await http.get("/directory/adqa")
        assert adqa.status_code == 200 and "Karen Doyle" in adqa.text
        assert 'for="member-email"' in adqa.text

        missing = await http.get("/directory/services/nope")
        assert missing.status_code == 404 and "There is no service at this address" in \
            missing.text
        # the restyled case list still works (cases come from the database)
        cases = await http.get("/cases")
        assert cases.status_code == 200 and "No cases yet" in cases.text
        assert "govuk-template" in cases.text


async def test_directory_forms(db_url):
    async with serve(db_url) as http:
        # a form with problems comes back with an error summary and the messages by the fields
        r = await http.post("/directory/services/new", data={
            "name": "  ", "team_email": "dco.example"})
        assert r.status_code == 422
        assert "<title>Error: Add a service" in r.text and "There is a problem" in r.text
        assert summary_links(r.text) == ["#name", "#agency", "#team-email"]
        for text in ("Enter the name of the service", "Select the agency the service belongs "
                     "to", "Enter the team&#39;s email address in the correct format",
                     'id="name-error"', 'id="team-email-error"', 'value="dco.example"'):
            assert text in r.text, text
        assert count(db_url, t.Service) == 0

        r = await http.post("/directory/services/new", data={
            "name": "Designated Clinical Officer team", "agency": "health",
            "team_email": "dco@icb.example", "is_default": "yes"})
        assert r.status_code == 303, r.text
        path = urlsplit(r.headers["location"])
        sid = path.path.rsplit("/", 1)[-1]
        assert path.path == f"/directory/services/{sid}" and path.query == "done=service-added"
        row = service_row(db_url, sid)
        assert (row.name, row.agency, row.team_email, row.is_default) == (
            "Designated Clinical Officer team", "health", "dco@icb.example", True)
        landed = await http.get(r.headers["location"])
        assert "Service added" in landed.text and "govuk-notification-banner--success" in \
            landed.text

        # the same rule as the API: a name in use is refused, by the field
        r = await http.post("/directory/services/new", data={
            "name": "designated clinical officer TEAM", "agency": "health"})
        assert r.status_code == 409 and summary_links(r.text) == ["#name"]
        assert "A service called &#39;Designated Clinical Officer team&#39; is already in " \
               "the directory" in r.text
        assert 'value="health" checked' in r.text  # what was typed is kept
        assert count(db_url, t.Service) == 1

        # contacts
        r = await http.post(f"/directory/services/{sid}/contacts", data={
            "name": "Helen Marsh", "email": "helen@", "role": "DCO"})
        assert r.status_code == 422 and summary_links(r.text) == ["#contact-email"]
        assert "Enter an email address in the correct format, like name@example.org" in r.text
        assert 'value="Helen Marsh"' in r.text and count(db_url, t.Contact) == 0
        for name, email, lead in (("Helen Marsh", "helen@icb.example", "yes"),
                                  ("Sam Patel", "sam@icb.example", None)):
            r = await http.post(f"/directory/services/{sid}/contacts", data={
                "name": name, "email": email, **({"is_lead": lead} if lead else {})})
            assert r.status_code == 303 and "done=contact-added" in r.headers["location"]
        with Session(engine_for(db_url)) as s:
            people = {c.name: c for c in s.exec(select(t.Contact))}
        assert people["Helen Marsh"].is_lead and not people["Sam Patel"].is_lead

        r = await http.post(f"/directory/contacts/{people['Sam Patel'].id}/lead")
        assert r.status_code == 303
        read = await ok(await http.get(f"{API}/services/{sid}"))
        assert read["lead"]["name"] == "Sam Patel" and read["contact_count"] == 2
        r = await http.post(f"/directory/contacts/{people['Sam Patel'].id}/deactivate")
        assert r.status_code == 303
        read = await ok(await http.get(f"{API}/services/{sid}"))
        assert read["lead"] is None and read["contact_count"] == 1
        # a deactivated contact cannot lead: the page says so
        r = await http.post(f"/directory/contacts/{people['Sam Patel'].id}/lead")
        assert r.status_code == 409 and "There is a problem" in r.text
        assert "Sam Patel is deactivated, so they cannot be the service lead" in r.text
        assert (await http.post("/directory/contacts/nope/lead")).status_code == 404

        # services: default, deactivate, reactivate
        other = await add_service(http, "Community Paediatrics", "health")
        r = await http.post(f"/directory/services/{other['id']}/default")
        assert r.status_code == 303
        assert await defaults(http, "health") == ["Community Paediatrics"]
        r = await http.post(f"/directory/services/{other['id']}/deactivate")
        assert r.status_code == 303
        assert service_row(db_url, other["id"]).active is False
        assert await defaults(http, "health") == []
        r = await http.post(f"/directory/services/{other['id']}/default")
        assert r.status_code == 409 and "cannot be the default Health service" in r.text
        assert (await http.post(f"/directory/services/{other['id']}/reactivate")
                ).status_code == 303
        assert service_row(db_url, other["id"]).active is True
        assert (await http.post(f"/directory/services/{other['id']}/explode")).status_code == 404

        # the ADQA group
        r = await http.post("/directory/adqa", data={"name": "", "email": "x"})
        assert r.status_code == 422 and summary_links(r.text) == ["#member-name",
                                                                 "#member-email"]
        r = await http.post("/directory/adqa", data={
            "name": "Karen Doyle", "email": "karen@council.example", "role": "AD Education"})
        assert r.status_code == 303 and r.headers["location"] == "/directory/adqa?done=member-added"
        r = await http.post("/directory/adqa", data={
            "name": "Karen D", "email": "KAREN@council.example"})
        assert r.status_code == 409 and summary_links(r.text) == ["#member-email"]
        assert "is already in the ADQA group" in r.text and count(db_url, t.AdqaMember) == 1
        (member,) = await ok(await http.get(f"{API}/adqa-members"))
        assert (await http.post(f"/directory/adqa/{member['id']}/deactivate")).status_code == 303
        assert await ok(await http.get(f"{API}/adqa-members")) == []
        listing = await http.get("/directory")
        assert "The ADQA group has no members yet" in listing.text


def section(html: str, heading_id: str) -> str:
    """The page from the heading with this id to the next h2 (or the end of the content)."""
    start = html.index(f'id="{heading_id}"')
    ends = [i for i in (html.find("<h2", start), html.find("</main>", start)) if i != -1]
    return html[start:min(ends)]


def table_rows(html: str) -> list[tuple[str, ...]]:
    """A GOV.UK table's body, each row as its header cell and data cells, as text."""
    body = html[html.index("<tbody"):html.index("</tbody>")]
    rows = []
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        rows.append(tuple(htmllib.unescape(re.sub(r"<[^>]+>|\s+", " ", c)).strip()
                          .replace("  ", " ") for c in cells))
    return rows


def error_messages(html: str) -> list[str]:
    start = html.index("govuk-error-summary__list")
    items = re.findall(r'<a href="#[^"]+">(.*?)</a>', html[start:html.index("</ul>", start)],
                       re.S)
    return [htmllib.unescape(i.strip()) for i in items]


async def test_changing_a_services_details_on_its_page(db_url):
    async with serve(db_url) as http:
        school = await add_service(http, "Northbridge Primary School", is_default=True,
                                   team_email="senco@northbridge.example")
        sid = school["id"]
        other = await add_service(http, "Riverside Academy")
        gone = await add_service(http, "Old Pupil Referral Unit")
        await ok(await http.patch(f"{API}/services/{gone['id']}", json={"active": False}))

        page = await http.get(f"/directory/services/{sid}")
        assert f'href="/directory/services/{sid}/edit#name"' in page.text
        assert f'href="/directory/services/{sid}/edit#team-email"' in page.text
        form = await http.get(f"/directory/services/{sid}/edit")
        assert form.status_code == 200
        assert f'action="/directory/services/{sid}/edit"' in form.text
        assert 'value="Northbridge Primary School"' in form.text  # filled in with what it is
        assert 'value="senco@northbridge.example"' in form.text

        def unchanged() -> None:
            row = service_row(db_url, sid)
            assert (row.name, row.team_email, row.is_default, row.active) == (
                "Northbridge Primary School", "senco@northbridge.example", True, True)

        # bad input: the form again, the summary linking to the fields, nothing changed
        r = await http.post(f"/directory/services/{sid}/edit",
                            data={"name": "  ", "team_email": "senco.example"})
        assert r.status_code == 422
        assert "<title>Error: Change service details" in r.text
        assert summary_links(r.text) == ["#name", "#team-email"]
        assert error_messages(r.text) == [
            "Enter the name of the service",
            "Enter the team's email address in the correct format, like name@example.org"]
        assert 'id="name-error"' in r.text and 'id="team-email-error"' in r.text
        assert 'value="senco.example"' in r.text  # what was typed is kept
        r = await http.post(f"/directory/services/{sid}/edit",
                            data={"name": "X" * 121, "team_email": ""})
        assert r.status_code == 422 and error_messages(r.text) == [
            "The name of the service must be 120 characters or fewer"]
        unchanged()

        # a clash with another service's name (ignoring case), active or not
        r = await http.post(f"/directory/services/{sid}/edit",
                            data={"name": " RIVERSIDE academy ", "team_email": ""})
        assert r.status_code == 409 and summary_links(r.text) == ["#name"]
        assert error_messages(r.text) == [
            "A service called 'Riverside Academy' is already in the directory: choose "
            "another name, or change that service instead"]
        r = await http.post(f"/directory/services/{sid}/edit",
                            data={"name": "old pupil referral unit", "team_email": ""})
        assert r.status_code == 409
        assert "'Old Pupil Referral Unit' is already in the directory (deactivated)" in \
            error_messages(r.text)[0]
        unchanged()
        assert service_row(db_url, other["id"]).name == "Riverside Academy"

        # success: changed, then back to the service's page with a banner
        r = await http.post(f"/directory/services/{sid}/edit", data={
            "name": "  Northbridge Primary Academy ", "team_email": "send@northbridge.example"})
        assert r.status_code == 303, r.text
        assert r.headers["location"] == f"/directory/services/{sid}?done=service-changed"
        row = service_row(db_url, sid)
        assert (row.name, row.team_email, row.is_default, row.active, row.agency) == (
            "Northbridge Primary Academy", "send@northbridge.example", True, True, "education")
        landed = await http.get(r.headers["location"])
        assert "The service&#39;s details have been changed" in landed.text
        assert "govuk-notification-banner--success" in landed.text
        assert '<h1 class="govuk-heading-l">Northbridge Primary Academy</h1>' in landed.text
        # its own name in other letters is no clash; an empty team address removes it
        r = await http.post(f"/directory/services/{sid}/edit",
                            data={"name": "NORTHBRIDGE primary academy", "team_email": " "})
        assert r.status_code == 303, r.text
        row = service_row(db_url, sid)
        assert (row.name, row.team_email) == ("NORTHBRIDGE primary academy", None)

        assert (await http.get("/directory/services/nope/edit")).status_code == 404
        r = await http.post("/directory/services/nope/edit", data={"name": "A", "team_email": ""})
        assert r.status_code == 404 and "There is no service at this address" in r.text
        r = await http.post("/directory/services/nope/edit", data={"name": "", "team_email": ""})
        assert r.status_code == 404
        assert count(db_url, t.Service) == 3


async def test_changing_a_contacts_details(db_url):
    async with serve(db_url) as http:
        school = await add_service(http, "Northbridge Primary School")
        sid = school["id"]
        priya = await add_contact(http, sid, "Priya Shah", role="SENCo", is_lead=True,
                                  email="p.shah@northbridge.example")
        tom = await add_contact(http, sid, "Tom Hughes", email="t.hughes@northbridge.example")

        page = await http.get(f"/directory/services/{sid}")
        for p in (priya, tom):
            assert f'href="/directory/contacts/{p["id"]}/edit"' in page.text
        assert 'Change<span class="govuk-visually-hidden"> details: Priya Shah</span>' in \
            page.text
        form = await http.get(f"/directory/contacts/{priya['id']}/edit")
        assert form.status_code == 200
        assert "Northbridge Primary School" in form.text
        for text in ('value="Priya Shah"', 'value="p.shah@northbridge.example"', 'value="SENCo"',
                     f'action="/directory/contacts/{priya["id"]}/edit"', 'for="contact-email"',
                     f'href="/directory/services/{sid}#contacts"'):
            assert text in form.text, text

        def row(contact_id: str) -> t.Contact:
            with Session(engine_for(db_url)) as s:
                return s.get(t.Contact, contact_id)

        r = await http.post(f"/directory/contacts/{priya['id']}/edit",
                            data={"name": "", "email": "priya@", "role": "Head of SEN"})
        assert r.status_code == 422
        assert "<title>Error: Change contact details" in r.text
        assert summary_links(r.text) == ["#contact-name", "#contact-email"]
        assert error_messages(r.text) == [
            "Enter their full name",
            "Enter an email address in the correct format, like name@example.org"]
        assert 'value="priya@"' in r.text and 'value="Head of SEN"' in r.text
        r = await http.post(f"/directory/contacts/{priya['id']}/edit",
                            data={"name": "Priya Shah", "email": "p.shah@northbridge.example",
                                  "role": "R" * 121})
        assert r.status_code == 422 and summary_links(r.text) == ["#contact-role"]
        before = row(priya["id"])
        assert (before.name, before.email, before.role) == (
            "Priya Shah", "p.shah@northbridge.example", "SENCo")

        r = await http.post(f"/directory/contacts/{priya['id']}/edit", data={
            "name": " Priya Shah-Jones ", "email": "priya.shah@northbridge.example", "role": ""})
        assert r.status_code == 303, r.text
        assert r.headers["location"] == \
            f"/directory/services/{sid}?done=contact-changed#contacts"
        after = row(priya["id"])
        assert (after.name, after.email, after.role, after.is_lead, after.active) == (
            "Priya Shah-Jones", "priya.shah@northbridge.example", None, True, True)
        assert row(tom["id"]).name == "Tom Hughes"  # the other contact is untouched
        landed = await http.get(r.headers["location"])
        assert "The contact&#39;s details have been changed" in landed.text
        read = await ok(await http.get(f"{API}/services/{sid}"))
        assert read["lead"]["email"] == "priya.shah@northbridge.example"

        # a deactivated contact's details can be corrected too; they stay deactivated
        await ok(await http.patch(f"{API}/contacts/{tom['id']}", json={"active": False}))
        r = await http.post(f"/directory/contacts/{tom['id']}/edit", data={
            "name": "Thomas Hughes", "email": "t.hughes@northbridge.example", "role": "Head"})
        assert r.status_code == 303
        assert (row(tom["id"]).name, row(tom["id"]).active) == ("Thomas Hughes", False)

        assert (await http.get("/directory/contacts/nope/edit")).status_code == 404
        r = await http.post("/directory/contacts/nope/edit",
                            data={"name": "A", "email": "a@b.example", "role": ""})
        assert r.status_code == 404 and "There is no contact at this address" in r.text
        assert count(db_url, t.Contact) == 2


async def test_changing_an_adqa_members_details(db_url):
    async with serve(db_url) as http:
        adqa = f"{API}/adqa-members"
        karen = await ok(await http.post(adqa, json={
            "name": "Karen Doyle", "email": "karen.doyle@council.example",
            "role": "Assistant Director, Education"}), 201)
        michael = await ok(await http.post(adqa, json={
            "name": "Michael Osei", "email": "m.osei@council.example"}), 201)
        former = await ok(await http.post(adqa, json={
            "name": "Ruth Ellis", "email": "ruth.ellis@council.example"}), 201)
        await ok(await http.patch(f"{adqa}/{former['id']}", json={"active": False}))

        page = await http.get("/directory/adqa")
        for m in (karen, michael, former):
            assert f'href="/directory/adqa/{m["id"]}/edit"' in page.text
        form = await http.get(f"/directory/adqa/{karen['id']}/edit")
        assert form.status_code == 200
        for text in ('value="Karen Doyle"', 'value="karen.doyle@council.example"',
                     'value="Assistant Director, Education"', 'for="member-email"',
                     f'action="/directory/adqa/{karen["id"]}/edit"'):
            assert text in form.text, text

        def member(member_id: str) -> tuple:
            with Session(engine_for(db_url)) as s:
                m = s.get(t.AdqaMember, member_id)
                return (m.name, m.email, m.role, m.active)

        original = member(michael["id"])
        r = await http.post(f"/directory/adqa/{michael['id']}/edit",
                            data={"name": " ", "email": "michael", "role": ""})
        assert r.status_code == 422
        assert "<title>Error: Change ADQA member details" in r.text
        assert summary_links(r.text) == ["#member-name", "#member-email"]
        assert 'value="michael"' in r.text
        # another member's address, in other letters: the clash message, by the field
        r = await http.post(f"/directory/adqa/{michael['id']}/edit", data={
            "name": "Michael Osei", "email": "KAREN.DOYLE@council.example", "role": ""})
        assert r.status_code == 409 and summary_links(r.text) == ["#member-email"]
        assert error_messages(r.text) == [
            "karen.doyle@council.example is already in the ADQA group (as Karen Doyle): "
            "check the address, or change that member instead"]
        r = await http.post(f"/directory/adqa/{michael['id']}/edit", data={
            "name": "Michael Osei", "email": "ruth.ellis@council.example", "role": ""})
        assert r.status_code == 409
        assert "belonged to a former ADQA member, Ruth Ellis" in error_messages(r.text)[0]
        assert member(michael["id"]) == original

        r = await http.post(f"/directory/adqa/{michael['id']}/edit", data={
            "name": "Michael Osei", "email": "michael.osei@council.example",
            "role": "Assistant Director, Health"})
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/directory/adqa?done=member-changed"
        assert member(michael["id"]) == ("Michael Osei", "michael.osei@council.example",
                                         "Assistant Director, Health", True)
        assert member(karen["id"])[1] == "karen.doyle@council.example"
        landed = await http.get(r.headers["location"])
        assert "The member&#39;s details have been changed" in landed.text
        assert "Assistant Director, Health" in landed.text

        assert (await http.get("/directory/adqa/nope/edit")).status_code == 404
        r = await http.post("/directory/adqa/nope/edit",
                            data={"name": "A", "email": "a@b.example", "role": ""})
        assert r.status_code == 404 and "There is no ADQA member at this address" in r.text
        assert count(db_url, t.AdqaMember) == 3


TEST_LADDERS = """
[ladders.default]
send_hour = 15
repeat_every_days = 3
repeat_to = ["service_lead", "adqa", "professional"]

[[ladders.default.steps]]
name = "request"
anchor = "requested"
days = 0
to = ["professional"]
template = "advice_request"

[[ladders.default.steps]]
name = "chase_early"
anchor = "requested"
days = 2
to = ["professional"]
template = "advice_reminder"

[[ladders.default.steps]]
name = "overdue"
days = 0
to = ["professional", "service_lead"]
template = "advice_overdue"

[ladders.health]
send_hour = 12

[[ladders.health.steps]]
name = "due_tomorrow"
days = -1
to = ["professional"]
template = "advice_due_tomorrow"

[ladders.educational_psychologist]
steps = []
"""


async def test_a_services_page_shows_the_configured_ladder_for_its_agency(db_url, tmp_path):
    # the shipped configuration: the default ladder serves education
    async with serve(db_url) as http:
        school = await add_service(http, "Northbridge Primary School")
        html = (await http.get(f"/directory/services/{school['id']}")).text
        chased = section(html, "chasing")
        assert "How advice from this service is chased</h2>" in chased
        assert "The council's configuration, <code>config/escalation.toml</code>" in \
            htmllib.unescape(chased)
        assert "the default ladder, <code>[ladders.default]</code>, as the file has no " \
            "ladder of its own for educational advice" in " ".join(chased.split())
        assert "Each email goes at 8am, London time" in chased
        assert table_rows(chased) == [
            ("Request", "The day it is requested", "The professional asked for the advice"),
            ("Reminder", "10 days before the due date", "The professional asked for the advice"),
            ("Due-tomorrow notice", "1 day before the due date",
             "The professional asked for the advice"),
            ("Overdue notice", "1 day after the due date", "The professional asked for the advice"),
            ("Escalation to the service lead", "5 days after the due date", "The service lead"),
            ("Escalation to the ADQA group", "10 days after the due date", "The ADQA group"),
            ("Repeat reminder", "Then every 7 days after the last step, until the advice arrives",
             "The professional asked for the advice and the service lead"),
        ]
        assert 'href="#chasing"' in html  # the summary list points to the section

    # a council's own file: each agency gets its kind of advice's ladder, else the default
    ladders = tmp_path / "ladders.toml"
    ladders.write_text(TEST_LADDERS)
    async with serve(db_url, escalation_file=ladders) as http:
        services = {agency: await add_service(http, f"A {agency.replace('_', ' ')} service", agency)
                    for agency in ("health", "social_care", "educational_psychology", "other")}

        async def chased(agency: str) -> str:
            r = await http.get(f"/directory/services/{services[agency]['id']}")
            assert r.status_code == 200, r.text
            return section(r.text, "chasing")

        health = await chased("health")
        assert f"<code>{ladders}</code>" in health and "config/escalation.toml" not in health
        assert "the ladder for medical advice, <code>[ladders.health]</code>" in \
            " ".join(health.split())
        assert "Each email goes at midday, London time" in health
        assert table_rows(health) == [
            ("Due-tomorrow notice", "1 day before the due date",
             "The professional asked for the advice")]

        for agency in ("social_care", "other"):
            text = await chased(agency)
            assert "<code>[ladders.default]</code>" in text, agency
            assert "Each email goes at 3pm, London time" in text
            assert table_rows(text) == [
                ("Request", "The day it is requested", "The professional asked for the advice"),
                ("Chase early", "2 days after it is requested",
                 "The professional asked for the advice"),
                ("Overdue notice", "The due date",
                 "The professional asked for the advice and the service lead"),
                ("Repeat reminder",
                 "Then every 3 days after the last step, until the advice arrives",
                 "The service lead, the ADQA group and the professional asked for the advice"),
            ], agency
        assert "no ladder of its own for social care advice" in \
            " ".join((await chased("social_care")).split())

        psychology = await chased("educational_psychology")
        assert "<code>[ladders.educational_psychologist]</code>" in psychology
        assert "Nobody is emailed about advice from this service" in psychology
        assert "<table" not in psychology

    # a file that cannot be read: the page still works and says what is wrong
    ladders.write_text("[ladders.health]\nsteps = []\n")  # no default ladder
    async with serve(db_url, escalation_file=ladders) as http:
        r = await http.get(f"/directory/services/{services['health']['id']}")
        assert r.status_code == 200
        chased_text = htmllib.unescape(section(r.text, "chasing"))
        assert "cannot be read" in chased_text and "[ladders.default]" in chased_text
        assert "<table" not in section(r.text, "chasing")


async def test_a_services_page_shows_its_own_ladder(db_url):
    async with serve(db_url) as http:
        dco = await add_service(http, "Designated Clinical Officer team", "health",
                                ladder=GOOD_LADDER)
        html = (await http.get(f"/directory/services/{dco['id']}")).text
        chased = section(html, "chasing")
        assert "This service's own ladder, set through the API: <code>PATCH " \
            f"/api/directory/services/{dco['id']}</code>" in " ".join(
                htmllib.unescape(chased).split())
        assert "config/escalation.toml" not in chased
        assert "Each email goes at 9am, London time" in chased
        assert table_rows(chased) == [
            ("Request", "The day it is requested", "The professional asked for the advice"),
            ("Escalation to the service lead", "3 days after the due date",
             "The service lead and the ADQA group"),
            ("Repeat reminder", "Then every 14 days after the last step, until the advice "
             "arrives", "The service lead"),
        ]
        assert "Its own ladder, instead of the council&#39;s" in html

        # an empty ladder of its own: nobody is emailed
        await ok(await http.patch(f"{API}/services/{dco['id']}", json={"ladder": {"steps": []}}))
        chased = section((await http.get(f"/directory/services/{dco['id']}")).text, "chasing")
        assert "own ladder" in chased and "Nobody is emailed" in chased

        # without it, the council's ladder for medical advice is back
        await ok(await http.patch(f"{API}/services/{dco['id']}", json={"ladder": None}))
        html = (await http.get(f"/directory/services/{dco['id']}")).text
        chased = section(html, "chasing")
        assert "config/escalation.toml" in chased and "own ladder" not in chased
        assert "The council&#39;s ladder for medical advice" in html
        assert table_rows(chased)[1] == ("Reminder", "10 days before the due date",
                                         "The professional asked for the advice")


# --- the demo seed -------------------------------------------------------------------------------


def test_seed_demo_adds_a_coherent_directory_once(db_url, capsys):
    assert seed_demo(db_url) is True
    with Session(engine_for(db_url)) as s:
        services = s.exec(select(t.Service)).all()
        contacts = s.exec(select(t.Contact)).all()
        members = s.exec(select(t.AdqaMember)).all()
    assert len(services) == len(DEMO_SERVICES) >= 8
    assert {x.name for x in services} >= {
        "Northbridge Primary School", "Riverside Academy", "Designated Clinical Officer team",
        "Community Paediatrics", "Children's Disability Team", "Children in Need Team",
        "Educational Psychology Service", "Speech and Language Therapy"}
    for agency in {x.agency for x in services}:
        assert sum(x.is_default for x in services if x.agency == agency) == 1, agency
    for x in services:
        mine = [c for c in contacts if c.service_id == x.id]
        assert 1 <= len(mine) <= 3 and sum(c.is_lead for c in mine) == 1, x.name
    assert len(members) == len(DEMO_ADQA) == 3
    addresses = ([x.team_email for x in services if x.team_email] + [c.email for c in contacts]
                 + [m.email for m in members])
    assert all(a.endswith(".example") for a in addresses), addresses

    assert seed_demo(db_url) is False  # the second time changes nothing
    assert ehc(["seed", "demo", "--url", db_url]) == 0
    assert "already has services; nothing added" in capsys.readouterr().out
    assert (count(db_url, t.Service), count(db_url, t.Contact), count(db_url, t.AdqaMember)) \
        == (len(services), len(contacts), len(members))


def test_seed_demo_leaves_a_councils_own_directory_alone(db_url, capsys):
    with Session(engine_for(db_url)) as s:
        s.add(t.Service(name="Our Own School", agency="education"))
        s.commit()
    assert seed_demo(db_url) is False
    assert count(db_url, t.Service) == 1 and count(db_url, t.AdqaMember) == 0


def test_ehc_seed_demo_command(sqlite_url, capsys):
    assert ehc(["seed", "demo", "--url", sqlite_url]) == 0
    out = capsys.readouterr().out
    assert f"added the demo directory: {len(DEMO_SERVICES)} services" in out
    assert count(sqlite_url, t.Service) == len(DEMO_SERVICES)


# --- the case pages, restyled -------------------------------------------------------------------


def add_closed_case(db_url: str, reference: str) -> date:
    """A closed case written straight to the database (its page needs no Temporal), with a
    deadline in each status, emails and advice sent through the secure page. Returns the day
    it closed."""
    from statutory import assessment_timescales

    closed = today() - timedelta(days=10)
    requested = closed - timedelta(days=130)
    rules = {k: d.rule.id for k, d in assessment_timescales(requested).items()}
    with Session(engine_for(db_url)) as s:
        child = t.Child(given_name="Noah", family_name="Example", date_of_birth=date(2016, 9, 1))
        s.add(child)
        s.flush()
        s.add(t.Case(reference=reference, child_id=child.id, workflow_id=f"assessment-{reference}",
                     stage="final_issued", is_open=False, request_date=requested,
                     request_source="parent", closed_on=closed, policy={}, version=1))
        s.flush()
        for key, due, done, applicable in (
            ("decision_due", closed - timedelta(days=100), closed - timedelta(days=110), True),
            ("no_plan_notice_due", closed - timedelta(days=20), None, False),
            ("draft_plan_target", closed + timedelta(days=2), None, True),
            ("final_plan_due", closed - timedelta(days=3), None, True),
        ):
            s.add(t.Milestone(case_reference=reference, key=key, rule_id=rules[key],
                              started_on=requested, due=due, done_on=done,
                              applicable=applicable))
        svc = t.Service(name=f"Community Paediatrics {reference}", agency="health")
        s.add(svc)
        s.flush()
        doctor = t.Contact(service_id=svc.id, name="Dr Ravi Patel", email="ravi@icb.example")
        s.add(doctor)
        s.flush()
        s.add(t.AdviceItem(case_reference=reference, key="health", source="health",
                           requested_on=closed - timedelta(days=92),
                           due=closed - timedelta(days=50),
                           received_on=closed - timedelta(days=40),
                           service_id=svc.id, contact_id=doctor.id))
        s.add(t.CaseEvent(case_reference=reference, seq=1, kind="request_received", on=requested,
                          at=datetime.combine(requested, datetime.min.time(), timezone.utc),
                          actor="caseworker 7", summary="Request for an assessment received"))
        for n, status, sent in ((1, "sent", datetime(2026, 7, 1, 7, 15, tzinfo=timezone.utc)),
                                (2, "failed", None)):
            s.add(t.EmailMessage(
                key=f"{reference}/health/escalate_lead/{n}", case_reference=reference,
                advice_key="health", step="escalate_lead", template="advice_escalation_lead",
                recipient_role="service_lead", recipient_name=f"Dr Helen Marsh {n}",
                recipient_address=f"helen{n}@icb.example",
                subject=f"Medical advice for {reference} is late", body_text="...",
                message_id=f"<{n}@ehc.example>", status=status, attempts=n, sent_at=sent))
        sub = t.AdviceSubmission(case_reference=reference, advice_key="health", kind="advice",
                                 text="Noah needs speech therapy weekly.",
                                 submitted_by="Dr Helen Marsh", status="accepted")
        s.add(sub)
        s.flush()
        s.add(t.AdviceDocument(submission_id=sub.id, filename="medical-advice.pdf",
                               content_type="application/pdf", size=2048, sha256="0" * 64,
                               content=b"%PDF"))
        s.commit()
        return closed


def tag(html: str, colour: str, text: str) -> bool:
    classes = f"govuk-tag {colour}" if colour else "govuk-tag"
    return re.search(rf'class="{classes}">\s*{re.escape(text)}\s*</strong>', html) is not None


async def test_the_case_page_in_govuk_style_with_its_emails(db_url):
    ref = "EHC-TEST-0001"
    add_closed_case(db_url, ref)
    async with serve(db_url) as http:
        r = await http.get(f"/cases/{ref}")
        assert r.status_code == 200, r.text
        html = r.text
        assert f'<h1 class="govuk-heading-l">{ref}</h1>' in html
        assert "govuk-summary-list" in html and "Noah Example" in html
        assert tag(html, "govuk-tag--green", "Done on time")
        assert tag(html, "govuk-tag--grey", "Not applicable")
        assert tag(html, "govuk-tag--orange", "Due soon")
        assert tag(html, "govuk-tag--red", "Overdue")
        assert tag(html, "govuk-tag--pink", "Done late")
        assert "3 days late" in html and "Reg 13(2)" in html  # the final plan's citation
        # who owes each piece of advice, from the directory
        assert f"Owed by Dr Ravi Patel, Community Paediatrics {ref}" in html
        assert '<th scope="col" class="govuk-table__header">Law</th>' in html
        # the emails: who, what, when (London time), status
        assert '<h2 class="govuk-heading-m" id="emails">Emails sent</h2>' in html
        assert "Dr Helen Marsh 1" in html and "helen1@icb.example, the service lead" in html
        assert f"Medical advice for {ref} is late" in html
        assert "1 July 2026 at 8:15am" in html  # 07:15 UTC is 08:15 in London (BST)
        assert tag(html, "govuk-tag--green", "Sent")
        assert tag(html, "govuk-tag--orange", "Failed, retrying") and "2 attempts" in html
        # folded away after the timeline, by the advice they are about, with the latest
        assert html.index('id="timeline"') < html.index('id="emails"')
        assert html.index('id="submissions"') < html.index('id="emails"')
        assert re.search(r'<details class="govuk-details ehc-emails">\s*<summary[^>]*>\s*<span '
                         r'class="govuk-details__summary-text">Emails sent for this case '
                         r'\(2; 1 not sent\)</span>', html)
        assert "Every email about the medical advice (2)" in html
        about = re.search(r'<th scope="row" class="govuk-table__header">Medical advice'
                          r'<br><span class="govuk-body-s">Owed by Dr Ravi Patel[^<]*</span>'
                          r'</th>(.*?)</tr>', html, re.S)
        assert about, "the medical advice's row"
        cells = [re.sub(r"<[^>]+>", " ", c).split() for c in
                 re.findall(r"<td[^>]*>(.*?)</td>", about.group(1), re.S)]
        assert cells[0] == ["2"] and " ".join(cells[1]) == "1 July 2026 at 8:15am"
        assert " ".join(cells[2]) == ("Escalation to the service lead, to Dr Helen Marsh 2 "
                                      "Failed, retrying")
        assert "advice health" not in html and "escalate lead" not in html
        # advice sent through the secure page, with its document
        assert "Advice sent by professionals" in html and "Noah needs speech therapy" in html
        assert re.search(rf'href="/api/cases/{ref}/submissions/\w+/documents/\d+">'
                         r"medical-advice.pdf</a>", html)
        assert "2 KB" in html
        assert "Request for an assessment received" in html and "caseworker 7" in html
        assert "None: the case is closed." in html

        listing = await http.get("/cases")
        assert listing.status_code == 200
        assert f'<a class="govuk-link" href="/cases/{ref}">{ref}</a>' in listing.text
        assert tag(listing.text, "govuk-tag--grey", "Closed")


def test_the_case_page_without_the_email_fields():
    """Before the case gains ``emails`` and ``submissions`` the page still renders."""
    from types import SimpleNamespace

    from services.rendering import render
    from domain.words import file_size, long_date, long_time
    from domain.case import AssessmentPolicy, CaseSnapshot, Milestone
    from statutory import assessment_timescales

    requested = today() - timedelta(days=30)
    dates = assessment_timescales(requested)
    snap = CaseSnapshot(reference="EHC-TEST-0002", child_id="x", stage="awaiting_decision",
                        request_date=requested, request_source="parent",
                        policy=AssessmentPolicy(), milestones=[
                            Milestone(key=k, rule_id=dates[k].rule.id, started_on=requested,
                                      due=dates[k].due) for k in ("decision_due",
                                                                  "final_plan_due")])
    c = SimpleNamespace(reference="EHC-TEST-0002", child=None, view=snap.view(today()),
                        timeline=[], letters=[])
    ctx = dict(day=long_date, when=long_time, size=file_size, recipient_labels={})
    html = render("pages/case.html", c=c, **ctx)
    assert "Decision whether to assess" in html and "Reg 5(1)" in html
    assert tag(html, "", "Not due yet")
    assert "Decide to assess" in html  # the actions allowed now
    assert "Emails sent" not in html and "Advice sent by professionals" not in html
    c.emails, c.submissions = [], []
    html = render("pages/case.html", c=c, **ctx)
    assert "Emails sent" in html and "None yet." in html
    assert "Advice sent by professionals" not in html
