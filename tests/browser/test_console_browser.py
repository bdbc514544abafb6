"""The ops console in headless Chromium (Debian's /usr/bin/chromium driven by Playwright;
scripts/ensure-chromium installs it) against a real `hub serve` on real RabbitMQ, on both
databases. One walk: log in; see the dashboard's counts change after a posted message;
search a child by UPN and open the journey; replay with preview; re-drive a parked row, its
alert firing on the dashboard and resolving after; log in as a viewer, who cannot see
payloads. A screenshot of each page is saved under the
test's tmp_path (listed in docs/console.md)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aio_pika
import httpx
import pytest
import yaml

from hub.amqp.topology import declare_subscriber
from hub.core import naming
from hub.demo import SECRETS
from hub.settings import DEV_ADMIN_TOKEN
from hub.simulate import sample_data as data
from hub.simulate.school_agent import SchoolAgent
from tests.console_client import new_user
from tests.e2e.conftest import AMQP_URL
from tests.e2e.hub_process import HubProcess, hub_process
from tests.e2e.test_agreements import AGENT_FOR, DAY, DOVEDALE

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
OTHER_RULES = ("outbox_backlog", "dead_letters", "not_consuming", "review_due", "ingest_refusals")
# Only the parked-rows rule, at once, evaluated five times a second (no notification targets).
ALERTS = {
    "interval_seconds": 0.2,
    "rules": {"parked_rows": {"for_minutes": 0}, **{r: {"enabled": False} for r in OTHER_RULES}},
}
ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}

try:
    from playwright.async_api import Page, async_playwright
except ImportError:  # pragma: no cover - playwright is a dev dependency
    async_playwright = None  # type: ignore[assignment]


@pytest.fixture
async def hub(database_url: str, tmp_path: Path) -> AsyncIterator[HubProcess]:
    if not CHROMIUM.exists() or async_playwright is None:
        pytest.skip("chromium is not installed (scripts/ensure-chromium could not install it)")
    url = None if database_url.startswith("sqlite") else database_url
    async with hub_process(
        tmp_path,
        database_url=url,
        env={"HUB_OUTBOX_MAX_ATTEMPTS": "2"},
        config_update={"alerts": ALERTS},
    ) as running:
        yield running


class Walk:
    """The browser page, the hub, and a numbered screenshot per page visited."""

    def __init__(self, page: Page, hub: HubProcess, shots: Path) -> None:
        self.page, self.hub, self.shots, self.count = page, hub, shots, 0

    async def shot(self, name: str) -> None:
        self.count += 1
        await self.page.screenshot(path=self.shots / f"{self.count:02d}-{name}.png", full_page=True)

    async def log_in(self, token: str) -> None:
        await self.page.goto(f"{self.hub.client.base_url}/console/login")
        await self.page.fill('input[name="token"]', token)
        await self.page.click('button[type="submit"]')
        await self.page.wait_for_selector("#who")

    async def figure(self, obj: str, figure: str) -> int:
        cell = self.page.locator(
            f'td[data-window="Last hour"][data-object="{obj}"][data-figure="{figure}"]'
        )
        return int(await cell.inner_text()) if await cell.count() else 0


async def _settled(client: httpx.AsyncClient) -> None:
    for _ in range(600):
        stats = (await client.get("/admin/stats", headers=ADMIN)).json()
        if stats["pending"] == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("outbox did not drain")


async def _alerts_firing(client: httpx.AsyncClient, firing: bool) -> None:
    for _ in range(900):
        view = (await client.get("/admin/alerts", headers=ADMIN)).json()
        if bool(view["firing"]) == firing:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the alert did not {'fire' if firing else 'resolve'}")


async def _parked(client: httpx.AsyncClient) -> list[object]:
    return list((await client.get("/admin/outbox/parked", headers=ADMIN)).json())


def _agent(hub: HubProcess, agent_id: str, zone: str) -> SchoolAgent:
    return SchoolAgent(hub.client, zone, agent_id, SECRETS[agent_id])


async def test_the_console_in_a_browser(hub: HubProcess, tmp_path: Path) -> None:
    config = yaml.safe_load((tmp_path / "county.yaml").read_text())
    prefix, zone = config["queue_prefix"], config["zones"][0]
    operator = await new_user(hub.client, ADMIN, "ops-anna", "operator")
    viewer = await new_user(hub.client, ADMIN, "view-ben", "viewer")
    for agent_id in AGENT_FOR.values():
        assert (await _agent(hub, agent_id, zone).register()).ok
    dovedale = _agent(hub, "dovedale-mis", zone)
    shots = tmp_path / "screenshots"
    shots.mkdir()
    assert async_playwright is not None
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        walk = Walk(await browser.new_page(viewport={"width": 1400, "height": 900}), hub, shots)
        page = walk.page

        # 1. log in
        await walk.log_in(operator)
        await walk.shot("dashboard-before")
        received_before = await walk.figure("LearnerPersonal", "received")

        # 2. the dashboard's counts change after a posted message
        assert (
            await dovedale.send_event("LearnerPersonal", "Add", data.learner_personal(DOVEDALE))
        ).ok
        await _settled(hub.client)
        await page.reload()
        assert await walk.figure("LearnerPersonal", "received") == received_before + 1
        assert await walk.figure("LearnerPersonal", "delivered") >= 1
        await walk.shot("dashboard-after")

        # 3. search a child by UPN (a POSTed form: never in a URL) and open the journey
        await page.click("text=Messages")
        await page.fill('input[name="upn"]', DOVEDALE.upn)
        await page.click("#search-button")
        await page.wait_for_selector("#results a.journey")
        assert DOVEDALE.upn not in page.url
        await walk.shot("search-by-upn")
        await page.click("#results a.journey")
        await page.wait_for_selector("#copies")
        assert DOVEDALE.upn not in page.url
        journey_url = page.url
        assert DOVEDALE.upn in await page.inner_text("#payload")
        assert "cme" in await page.inner_text("#copies")
        await walk.shot("journey")

        # 4. replay with preview: the copies each recipient would receive, then confirm
        await page.click("#replay-button")
        await page.wait_for_selector("text=Confirm replay")
        assert "cme" in await page.inner_text("main")
        await walk.shot("replay-preview")
        await page.click("#confirm")
        assert "queued" in await page.inner_text("#done")
        await walk.shot("replay-done")
        await _settled(hub.client)

        # 5. re-drive a parked row: CME's queue is gone, so its copy fails until parked
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            await channel.queue_delete(naming.subscriber_queue("cme", prefix))
            xml = data.learner_attendance(DOVEDALE, DAY, "AM", "/")
            assert (await dovedale.send_event("LearnerAttendance", "Add", xml)).ok
            for _ in range(600):
                if await _parked(hub.client):
                    break
                await asyncio.sleep(0.05)
            await declare_subscriber(channel, "cme", prefix)  # ops fix the cause ...
        await _alerts_firing(hub.client, firing=True)  # 6. an alert fires ...
        await page.click("text=Dashboard")
        assert "parked_rows" in await page.inner_text("#alerts-firing")
        await walk.shot("alert-firing")
        await page.click("text=Stuck")
        assert "LearnerAttendance" in await page.inner_text("#parked-rows")
        await walk.shot("parked")
        await page.click("#redrive-button")  # ... and re-drive, after confirming
        await page.wait_for_selector("#confirm")
        await walk.shot("redrive-confirm")
        await page.click("#confirm")
        assert "Re-drove 1 parked row" in await page.inner_text("#done")
        await walk.shot("redrive-done")
        await _settled(hub.client)
        assert await _parked(hub.client) == []
        await _alerts_firing(hub.client, firing=False)  # ... and resolves after the re-drive
        await page.click("text=Dashboard")
        await page.wait_for_selector("#no-alerts")
        assert "resolved" in (await page.text_content("#alerts-history") or "")
        await walk.shot("alert-resolved")

        # 7. a viewer cannot see payloads (nor the learner's identifiers)
        await page.click("text=Log out")
        await page.wait_for_selector('input[name="token"]')
        await walk.log_in(viewer)
        await page.goto(journey_url)
        await page.wait_for_selector("#payload-hidden")
        assert await page.locator("#payload").count() == 0
        assert DOVEDALE.upn not in await page.content()
        await walk.shot("viewer-journey")
        await browser.close()
    assert len(list(shots.glob("*.png"))) == 12
