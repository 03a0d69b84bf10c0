"""End to end in a real browser (headless Chromium, tests/browser.py), against the app over
HTTP and a worker on the Temporal dev server: a caseworker signs in with the form, starts an
assessment with the form, lands on its page; when time has moved past the 6-week decision
(the late list's "as of" day), a manager finds it on the late list, and not before.

Screenshots of each step are kept in tests/screenshots/test_browser/ (ignored by git)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest

from services.clock import today
from tests.browser import browser, screenshots, sign_in  # noqa: F401 - fixtures
from tests.conftest import settings_for
from tests.http import PASSWORD, add_staff, serve_app
from tests.test_api import wait_for_record
from worker.main import build_worker

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


async def test_a_caseworker_starts_an_assessment_that_a_manager_later_finds_late(
        browser, screenshots, dev_env, sqlite_url, executor):  # noqa: F811
    settings = settings_for(sqlite_url, f"browser-{uuid.uuid4().hex[:8]}")
    add_staff(sqlite_url, "caseworker", email="asha@council.example", name="Asha Patel")
    add_staff(sqlite_url, "manager", email="morgan@council.example", name="Morgan Jones")
    family = f"Example{uuid.uuid4().hex[:6]}"
    received = today()
    async with build_worker(dev_env.client, settings, executor):
        async with serve_app(settings, dev_env.client, role=None) as http:
            base = str(http.base_url).rstrip("/")
            caseworker = await browser.new_context(base_url=base)
            caseworker.set_default_timeout(30_000)
            page = await caseworker.new_page()
            shot = Shots(page, screenshots)

            # Not signed in: sent to the sign-in page, and back to where they were going.
            await page.goto("/")
            assert re.search(r"/sign-in\?next=%2F$", page.url), page.url
            await shot("01-sign-in")
            await page.get_by_label("Email address").press_sequentially("asha@council.example")
            await page.get_by_label("Password").press_sequentially(PASSWORD)
            await page.get_by_role("button", name="Sign in").click()
            await page.wait_for_url(f"{base}/")
            await page.get_by_role("heading", level=1).wait_for()
            assert "Asha Patel" in await page.content()
            await shot("02-my-cases")

            # A GOV.UK start button: a link that looks (and is announced) as a button.
            await page.get_by_role("button", name="Start an assessment").click()
            await page.wait_for_url(f"{base}/assessments/new")
            await page.get_by_label("Given name").fill("Sam")
            await page.get_by_label("Family name").fill(family)
            await fill_date(page, "Date of birth", received - timedelta(days=9 * 365))
            await fill_date(page, "Date the request was received", received)
            await page.get_by_role("group", name="Who made the request?") \
                .get_by_label("A parent").check()
            await shot("03-start-form")
            await page.get_by_role("button", name="Start the assessment").click()
            await page.wait_for_url(re.compile(r"/cases/EHC-[0-9A-Z]{4}-[0-9A-Z]{4}\?started=1$"))
            ref = re.search(r"/cases/(EHC-[0-9A-Z]{4}-[0-9A-Z]{4})", page.url).group(1)
            heading = await page.get_by_role("heading", level=1).inner_text()
            assert ref in await page.content(), heading
            await wait_for_record(sqlite_url, ref)
            await page.reload()
            body = await page.locator("main").inner_text()
            decision_due = received + timedelta(weeks=6)
            assert "Decision whether to assess" in body
            assert f"{decision_due.day} {decision_due:%B %Y}" in body, body
            await shot("04-case-page")
            await caseworker.close()

            # A manager, in their own browser.
            manager = await browser.new_context(base_url=base)
            manager.set_default_timeout(30_000)
            page = await manager.new_page()
            shot.page = page
            await sign_in(page, "morgan@council.example", PASSWORD)

            # Today: the decision is not late (due in 6 weeks).
            await page.goto("/late")
            assert await page.get_by_role("heading", level=1).inner_text() == "Late now"
            assert ref not in await page.locator("main").inner_text()
            await shot("05-late-today")

            # Time moves: as of 43 days after the request, the day after the decision was due.
            later = received + timedelta(days=43)
            await page.goto(f"/late?today={later.isoformat()}")
            main = page.locator("main")
            assert f"As of {later.day} {later:%B %Y}" in await main.inner_text()
            row = page.get_by_role("row").filter(has=page.get_by_role("link", name=ref))
            assert await row.count() == 1, await main.inner_text()
            text = await row.inner_text()
            assert "Decision whether to assess" in text and "Reg 5(1)" in text, text
            assert "1 day" in text and "Asha Patel" in text, text
            await shot("06-late-after-43-days")

            # The day it is due is not late yet.
            await page.goto(f"/late?today={decision_due.isoformat()}")
            assert await page.get_by_role("link", name=ref).count() == 0

            # From the list to the case.
            await page.goto(f"/late?today={later.isoformat()}")
            await page.get_by_role("link", name=ref).click()
            await page.wait_for_url(f"{base}/cases/{ref}")
            await shot("07-case-from-late-list")
            await manager.close()


async def fill_date(page, legend: str, day) -> None:
    """A GOV.UK date input: the fieldset named by its legend, and its day, month and year."""
    group = page.get_by_role("group", name=legend)
    await group.get_by_label("Day").fill(str(day.day))
    await group.get_by_label("Month").fill(str(day.month))
    await group.get_by_label("Year").fill(str(day.year))


class Shots:
    """Full-page screenshots, numbered by step."""

    def __init__(self, page, folder) -> None:
        self.page, self.folder = page, folder

    async def __call__(self, name: str) -> None:
        await self.page.screenshot(path=str(self.folder / f"{name}.png"), full_page=True)
