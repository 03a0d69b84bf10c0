"""The FastAPI application: the caseworker API (OpenAPI docs at /docs and /redoc, drawn by
Swagger UI and ReDoc from the app's own copies, so they work without internet) and the web
pages."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from datetime import date

from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.requests import Request
from temporalio.client import Client

from api import access, accounts, adqa, auth, deps
from api import council_sign_in
from api import advice_portal
from api import cases, directory, directory_pages, errors, imports, pages, problems
from api import reviews, security_headers
from api import cohort
from api import linked_plans, reports
from api import action_forms, casework_pages, worklist
from api import data_protection
from api import statistics, stats_pages
from config.settings import Settings, get_settings
from statutory import assessment_timescales
from services.health import check_health
from services.temporal import bind, connect

log = logging.getLogger("ehc.api")
ROOT = Path(__file__).resolve().parent.parent
GOVUK_DIST = ROOT / "node_modules" / "govuk-frontend" / "dist" / "govuk"
# The API documentation pages' scripts and styles (npm swagger-ui-dist and redoc, installed by
# ./dev.sh beside govuk-frontend), served under DOCS_ASSETS: the pages never use a CDN.
SWAGGER_DIST = ROOT / "node_modules" / "swagger-ui-dist"
REDOC_DIST = ROOT / "node_modules" / "redoc" / "bundles"
DOCS_ASSETS = "/docs-assets"
SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")
REDOC_FILES = ("redoc.standalone.js",)


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


def mount_docs(app: FastAPI) -> None:
    """The API's documentation pages, /docs (Swagger UI) and /redoc (ReDoc), as FastAPI draws
    them but with every script, style and icon from this app (``DOCS_ASSETS``) and a policy that
    lets them load nothing else (``api.security_headers.DOCS_CSP``). Open to anyone,
    like the OpenAPI document they read (as FastAPI's own docs routes are)."""
    installed = all((SWAGGER_DIST / f).is_file() for f in SWAGGER_FILES) and all(
        (REDOC_DIST / f).is_file() for f in REDOC_FILES)
    if installed:
        app.mount(f"{DOCS_ASSETS}/swagger-ui", StaticFiles(directory=SWAGGER_DIST),
                  name="swagger-ui")
        app.mount(f"{DOCS_ASSETS}/redoc", StaticFiles(directory=REDOC_DIST), name="redoc")
    else:
        log.warning("Swagger UI or ReDoc is not installed (%s, %s); /docs and /redoc will say "
                    "so. Run `npm ci` in %s (./dev.sh does this)", SWAGGER_DIST, REDOC_DIST, ROOT)
    missing = PlainTextResponse(
        "The API documentation pages are not installed on this server: run `npm ci` in the "
        "project's folder (./dev.sh setup does this). The API's description is at "
        "/openapi.json.", status_code=503)

    def under(request: Request) -> str:  # behind a proxy that serves the app under a path
        return request.scope.get("root_path", "").rstrip("/")

    async def swagger_ui(request: Request) -> HTMLResponse:
        if not installed:
            return missing
        root = under(request)
        return get_swagger_ui_html(
            openapi_url=root + app.openapi_url, title=f"{app.title}: API",
            oauth2_redirect_url=None,  # sign-in is by token: no OAuth2 redirect
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/swagger-ui/favicon-32x32.png",
            # no validator badge: it would send the document's address to an outside server
            swagger_ui_parameters={"validatorUrl": None})

    async def redoc(request: Request) -> HTMLResponse:
        if not installed:
            return missing
        root = under(request)
        return get_redoc_html(
            openapi_url=root + app.openapi_url, title=f"{app.title}: API",
            redoc_js_url=f"{root}{DOCS_ASSETS}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{root}{DOCS_ASSETS}/swagger-ui/favicon-32x32.png",
            with_google_fonts=False)

    app.add_route("/docs", swagger_ui, include_in_schema=False)
    app.add_route("/redoc", redoc, include_in_schema=False)


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
        docs_url=None, redoc_url=None,  # mount_docs: the same pages, with no CDN
        # Every route: who may use it (api/auth.py POLICY), checked before the route runs.
        dependencies=[Depends(auth.authorize)],
    )
    app.state.settings = settings
    app.state.temporal = bind(client, settings) if client is not None else None
    # Security headers on every response; a body too large refused before it is read.
    security_headers.install(app, settings)
    errors.install(app)
    auth.install(app)
    # Every view of a child's record is logged (api/access.py; docs/data-protection.md).
    app.add_middleware(access.AccessLogMiddleware)
    app.include_router(accounts.router)
    app.include_router(accounts.api)
    app.include_router(council_sign_in.router)
    app.include_router(data_protection.router)
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
    mount_docs(app)
    problems.install(app, needs_role=lambda method, path: auth.required_role(
        method, path) is not auth.PUBLIC, engine=deps.get_client)

    @app.get("/api/timescales/assessment", tags=["timescales"],
             summary="Statutory deadlines of an assessment, as `ehc timescales assessment`")
    def timescales(request_date: date, advice_requested: date | None = None,
                   draft_served: date | None = None) -> dict:
        return {k: d.as_json() for k, d in assessment_timescales(
            request_date, advice_requested=advice_requested, draft_served=draft_served).items()}

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> JSONResponse:
        """The database, Temporal and a worker, each answering now: 200 when all are well,
        else 503 naming what is down (services/health.py)."""
        health = await check_health(settings=settings, client=app.state.temporal)
        return JSONResponse(health.model_dump(), status_code=200 if health.ok else 503,
                            headers={"Cache-Control": "no-store"})

    # Last: every route has exactly one rule in the role table, and every rule a route (else
    # PolicyError, saying which rule to add or correct, and the app does not start).
    auth.check_policy(app)
    return app


def app_factory() -> FastAPI:  # uvicorn --factory api.app:app_factory
    return create_app()
