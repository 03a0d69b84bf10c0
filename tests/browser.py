"""A real browser for the tests: Debian's headless Chromium (``./dev.sh test`` installs it with
apt-get), driven by the Python package ``playwright`` (pyproject.toml's dev extras; its own
browser download, ``playwright install``, is never used), and axe-core (npm, package.json's
devDependencies) for the accessibility checks.

Without Chromium, playwright or axe-core the browser tests skip, saying so loudly; under CI
(``CI`` set, as ``.ci/run`` is run) they fail instead, as the PostgreSQL tests do."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# Where the last run's screenshots are kept (ignored by git), to look at by eye.
SCREENSHOTS = ROOT / "tests" / "screenshots"
# The WCAG 2.0, 2.1 and 2.2 success criteria of levels A and AA that axe-core checks.
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
# Headless, and nothing that reaches out: this machine has no internet, and Chromium's
# background connections (updates, sync, QUIC probes) are refused by the closed network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    """``EHC_TEST_CHROMIUM``, else Debian's ``chromium`` on the PATH."""
    path = os.environ.get("EHC_TEST_CHROMIUM") or shutil.which("chromium") \
        or shutil.which("chromium-browser")
    return path if path and os.access(path, os.X_OK) else None


def _missing() -> list[str]:
    missing = []
    if chromium_path() is None:
        missing.append("Chromium (as root: apt-get install chromium; ./dev.sh test does this)")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        missing.append("the Python package playwright (pip install -e '.[dev]')")
    if not AXE.is_file():
        missing.append(f"axe-core ({AXE.relative_to(ROOT)}: npm ci)")
    return missing


def require_browser() -> None:
    """Skip (locally) or fail (under CI) when something the browser tests need is missing."""
    missing = _missing()
    if not missing:
        return
    message = "BROWSER TESTS NOT RUN: missing " + "; ".join(missing)
    if os.environ.get("CI"):
        pytest.fail(message + ". ./dev.sh test installs them", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
async def browser():
    """One headless Chromium for the module; each test opens its own contexts (cookies)."""
    require_browser()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=chromium_path(),
                                            args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:  # a browser that no longer answers must not hold the run up
            await asyncio.wait_for(chromium.close(), 30)


@pytest.fixture(scope="module")
def screenshots(request, tmp_path_factory) -> Path:
    """The module's screenshot folder: ``tests/screenshots/<module>/``, emptied of the last
    run's PNGs first (git ignores the folder), or a temporary one if that is not writable."""
    folder = SCREENSHOTS / request.module.__name__.rpartition(".")[2]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()
        return folder
    except OSError:
        return tmp_path_factory.mktemp("screenshots")


async def sign_in(page, email: str, password: str) -> None:
    """Sign in as a person does: the form, typed, and the button (the page's context has the
    app's ``base_url``)."""
    await page.goto("/sign-in")
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_load_state()


async def axe_violations(page) -> list[dict]:
    """axe-core's WCAG 2.2 A and AA violations on the page as it is now: each with its id,
    impact, help, helpUrl and nodes (target, failureSummary). axe-core is added to the page
    unless its context already adds it to every page (``context.add_init_script(path=AXE)``),
    by evaluating it as the browser's tools do: a script tag would be refused by the pages'
    Content-Security-Policy."""
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.evaluate(AXE.read_text())
    # Only what is reported crosses back: axe's whole result is large, and slow to pass over.
    return await page.evaluate(
        """tags => axe.run(document, {runOnly: {type: 'tag', values: tags},
                                      resultTypes: ['violations']})
            .then(r => r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                nodes: v.nodes.map(n => ({target: n.target, html: n.html,
                                           failureSummary: n.failureSummary}))
            })))""", WCAG_AA)


def describe(violations: list[dict]) -> str:
    """Each violation: its id, impact and help, and where (each node's selector, its HTML and
    the first thing axe-core says would fix it)."""
    lines = []
    for v in violations:
        lines.append(f"  {v['id']} ({v.get('impact')}): {v['help']} <{v['helpUrl']}>")
        for node in v["nodes"][:10]:
            fixes = [x.strip() for x in (node.get("failureSummary") or "").splitlines()
                     if x.strip() and not x.startswith("Fix ")]
            lines.append(f"      at {' '.join(map(str, node['target']))} {node['html'][:120]}"
                         + (f": {fixes[0]}" if fixes else ""))
        if len(v["nodes"]) > 10:
            lines.append(f"      ... and {len(v['nodes']) - 10} more")
    return "\n".join(lines)
