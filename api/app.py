"""The FastAPI application: the caseworker API (OpenAPI docs at /docs) and the web pages."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from datetime import date

from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from temporalio.client import Client

from api import accounts, adqa, auth
from api import advice_portal
from api import cases, directory, directory_pages, errors, imports, pages
from api import reviews
from api import cohort
from api import linked_plans, reports
from api import action_forms, casework_pages, worklist
from api import statistics, stats_pages
from config.settings import Settings, get_settings
from statutory import assessment_timescales
from services.temporal import connect

log = logging.getLogger("ehc.api")
ROOT = Path(__file__).resolve().parent.parent
GOVUK_DIST = ROOT / "node_modules" / "govuk-frontend" / "dist" / "govuk"


def mount_assets(app: FastAPI) -> None:
    """The GOV.UK Frontend build (npm package govuk-frontend, installed by ./dev.sh) and the
    project's own few static files. Served by the app itself: the pages never use a CDN."""
    app.mount("/static", StaticFiles(directory=ROOT / "static"), name="static")
    if not GOVUK_DIST.is_dir():
        log.warning("GOV.UK Frontend is not installed (%s); pages will be unstyled. Run "
                    "`npm ci` in %s (./dev.sh does this)", GOVUK_DIST, ROOT)
        return
    app.mount("/govuk", StaticFiles(directory=GOVUK_DIST), name="govuk")
    app.mount("/assets", StaticFiles(directory=GOVUK_DIST / "assets"), name="assets")


def create_app(settings: Settings | None = None, client: Client | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if app.state.temporal is None:
            try:
                app.state.temporal = await connect(settings)
            except Exception as exc:  # the API still serves lists and pages from the database
                log.warning("Temporal not reachable at %s: %s", settings.temporal_address, exc)
        yield

    app = FastAPI(
        title="EHC assessments and reviews",
        description="Statutory EHC needs assessments on time: start a case, take each step, "
        "read its deadlines. Every date carries the regulation it comes from.",
        version="0.1.0",
        lifespan=lifespan,
        # Every route: who may use it (api/auth.py POLICY), checked before the route runs.
        dependencies=[Depends(auth.authorize)],
    )
    app.state.settings = settings
    app.state.temporal = client
    errors.install(app)
    auth.install(app)
    app.include_router(accounts.router)
    app.include_router(accounts.api)
    app.include_router(cases.router)
    app.include_router(reviews.router)
    app.include_router(cohort.router)
    app.include_router(casework_pages.router)
    app.include_router(action_forms.router)
    app.include_router(pages.router)
    app.include_router(directory_pages.router)
    app.include_router(directory.router)
    app.include_router(adqa.router)
    app.include_router(advice_portal.router)
    app.include_router(imports.router)
    app.include_router(linked_plans.router)
    app.include_router(reports.router)
    app.include_router(worklist.router)
    app.include_router(worklist.pages)
    app.include_router(statistics.router)
    app.include_router(stats_pages.router)
    app.include_router(stats_pages.public_api)
    mount_assets(app)

    @app.get("/api/timescales/assessment", tags=["timescales"],
             summary="Statutory deadlines of an assessment, as `ehc timescales assessment`")
    def timescales(request_date: date, advice_requested: date | None = None,
                   draft_served: date | None = None) -> dict:
        return {k: d.as_json() for k, d in assessment_timescales(
            request_date, advice_requested=advice_requested, draft_served=draft_served).items()}

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict:
        return {"ok": True, "temporal": app.state.temporal is not None}

    return app


def app_factory() -> FastAPI:  # uvicorn --factory api.app:app_factory
    return create_app()
