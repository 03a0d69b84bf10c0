"""Web pages: a plain list of cases and a case page. The full GOV.UK console is built on top
of these in the web-console issue."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from activities.rendering import render
from api import cases

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    settings = request.app.state.settings
    with cases.session_for(settings.db_url) as session:
        rows = cases.list_cases(session, open_only=False, limit=200)
    return HTMLResponse(render("pages/cases.html", cases=rows, today=cases.today()))


@router.get("/cases/{reference}", response_class=HTMLResponse)
async def case_page(reference: str, request: Request) -> HTMLResponse:
    settings = request.app.state.settings
    with cases.session_for(settings.db_url) as session:
        case = await cases.read_case(reference, session, cases.get_client(request))
    return HTMLResponse(render("pages/case.html", c=case))
