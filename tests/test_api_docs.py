"""The API's documentation pages, /docs (Swagger UI) and /redoc (ReDoc), work with no internet:
every script, style and icon they use is the app's own (npm swagger-ui-dist and redoc, installed
by ./dev.sh), and the image ships them. Over real HTTP, and in a real browser that is refused
any other host."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

from tests.browser import browser, require_browser  # noqa: F401 - fixture
from tests.conftest import free_port, settings_for
from tests.http import serve_app

ROOT = Path(__file__).resolve().parent.parent
PAGES = ("/docs", "/redoc")


def references(html: str) -> list[str]:
    """Every URL a page's HTML loads: script src, link href, img src."""
    return re.findall(r'<(?:script|img)[^>]*\ssrc="([^"]+)"', html) + re.findall(
        r'<link[^>]*\shref="([^"]+)"', html)


async def test_the_docs_pages_load_only_the_apps_own_files(sqlite_url):
    settings = settings_for(sqlite_url, "docs", temporal_address=f"127.0.0.1:{free_port()}")
    async with serve_app(settings, None, role=None) as anyone:  # open, as /openapi.json is
        for path in PAGES:
            page = await anyone.get(path)
            assert page.status_code == 200, path
            assert "http://" not in page.text and "https://" not in page.text, path
            assert "/openapi.json" in page.text
            assert "default-src 'self'" in page.headers["content-security-policy"]
            urls = references(page.text)
            assert any(u.endswith(".js") for u in urls), (path, urls)
            for url in urls:
                parts = urlsplit(url)
                assert not parts.scheme and not parts.netloc and url.startswith("/"), url
                served = await anyone.get(url)
                assert served.status_code == 200, url
                assert len(served.content) > 500, url
                kind = served.headers["content-type"]
                assert kind.startswith({"js": ("text/javascript", "application/javascript"),
                                        "css": ("text/css",), "png": ("image/png",)}[
                    url.rpartition(".")[2]]), (url, kind)
        # No Swagger UI validator badge (it would ask an outside server about the document).
        assert '"validatorUrl": null' in (await anyone.get("/docs")).text


async def test_the_docs_pages_draw_the_api_in_a_browser_with_no_internet(
        browser, sqlite_url):  # noqa: F811
    require_browser()
    settings = settings_for(sqlite_url, "docs", temporal_address=f"127.0.0.1:{free_port()}")
    async with serve_app(settings, None, role=None) as http:
        base = str(http.base_url).rstrip("/")
        outside: list[str] = []
        errors: list[str] = []
        context = await browser.new_context(base_url=base)

        async def only_this_app(route):
            if route.request.url.startswith(base + "/") or route.request.url.startswith(
                    ("data:", "blob:")):
                await route.continue_()
            else:
                outside.append(route.request.url)
                await route.abort()

        await context.route("**/*", only_this_app)
        try:
            page = await context.new_page()
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto("/docs")
            await page.wait_for_selector(".swagger-ui .info .title", timeout=30000)
            assert "EHC assessments and reviews" in await page.inner_text(".swagger-ui .info")
            await page.wait_for_selector("#operations-tag-statistics", timeout=30000)
            await page.goto("/redoc")
            await page.wait_for_selector("h1", timeout=30000)
            assert "EHC assessments and reviews" in await page.inner_text("h1")
            assert await page.get_by_text("Every timeliness measure for a period").count()
        finally:
            await context.close()
        # Nothing was asked of another host (the page's own policy refuses ReDoc's logo
        # before it is asked), and the pages ran without an error.
        assert outside == [] and errors == []


def test_the_image_copies_every_package_and_the_docs_assets():
    """The Dockerfile copies each package pyproject.toml lists, and the files /docs and
    /redoc load (api.app's SWAGGER_FILES and REDOC_FILES), from the npm stage."""
    from api.app import REDOC_DIST, REDOC_FILES, SWAGGER_DIST, SWAGGER_FILES

    dockerfile = (ROOT / "Dockerfile").read_text()
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"]
    for package in packages:
        assert re.search(rf"^COPY {package} \./{package}$", dockerfile, re.M), package
        assert (ROOT / package).is_dir(), package
    copied = re.findall(r"^COPY \S+ \./(\S+)$", dockerfile, re.M)
    for folder in copied:
        assert (ROOT / folder).exists(), f"the Dockerfile copies {folder}, which is not here"
    for dist, files in ((SWAGGER_DIST, SWAGGER_FILES), (REDOC_DIST, REDOC_FILES)):
        for name in files:
            source = f"/assets/{dist.relative_to(ROOT)}/{name}"
            assert source in dockerfile, source
            assert (dist / name).is_file(), f"{dist / name}: npm ci"
