"""The ops console over HTTP (ASGI), the real database and real RabbitMQ: login sessions
and CSRF, the dashboard's counts, the journey of a child's message found by UPN (POSTed,
never in a URL) with its audit rows, the viewer who cannot see payloads or search by
learner, replay with preview, and re-drive of a parked row."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aio_pika
import httpx
import pytest

from hub.core.records import AlertStateRecord
from hub.simulate import sample_data as data
from tests.console_client import csrf_of, log_in, new_user
from tests.e2e.conftest import ADMIN, AMQP_URL, RunningHub
from tests.e2e.test_agreements import DAY, DOVEDALE, _audit, _register_all, _sample

pytestmark = pytest.mark.integration


@asynccontextmanager
async def browser(running: RunningHub) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the same app with its own cookie jar."""
    transport = httpx.ASGITransport(app=running.client._transport.app)  # type: ignore[attr-defined]
    async with httpx.AsyncClient(
        transport=transport, base_url="http://hub", follow_redirects=True
    ) as client:
        yield client


async def _logged_in(running: RunningHub, client: httpx.AsyncClient, role: str) -> str:
    token = await new_user(running.client, ADMIN, f"{role}-1", role)
    page = await log_in(client, token)
    assert page.status_code == 200 and f"{role}-1 ({role})" in page.text, page.text
    return token


async def _send_child(running: RunningHub) -> None:
    await _register_all(running)
    agent = running.agent("dovedale-mis")
    assert (await agent.send_event("LearnerPersonal", "Add", data.learner_personal(DOVEDALE))).ok
    await running.settle()


def _figure(page: str, window: str, obj: str, figure: str) -> int:
    marker = f'data-window="{window}" data-object="{obj}" data-figure="{figure}">'
    start = page.index(marker) + len(marker)
    return int(page[start : page.index("<", start)])


async def test_login_search_by_upn_and_journey(running: RunningHub) -> None:
    async with browser(running) as client:
        assert (await client.get("/console/")).url.path == "/console/login"  # logged out
        await _logged_in(running, client, "operator")
        before = (await client.get("/console/")).text
        assert "LearnerPersonal" not in before
        await _send_child(running)
        dashboard = (await client.get("/console/")).text
        assert _figure(dashboard, "Last hour", "LearnerPersonal", "received") == 1
        assert _figure(dashboard, "Today", "LearnerPersonal", "delivered") >= 1
        queues = dashboard.split('id="queues"')[1].split("</section>")[0]
        assert "did not answer" not in queues and running.queue("cme") in queues

        form = await client.get("/console/messages")
        found = await client.post(
            "/console/messages", data={"csrf": csrf_of(form.text), "upn": DOVEDALE.upn.lower()}
        )
        assert found.status_code == 200
        assert DOVEDALE.upn not in str(found.url)
        link = found.text.split('class="journey" href="')[1].split('"')[0]
        journey = await client.get(link)
        assert journey.status_code == 200
        assert DOVEDALE.upn not in str(journey.url)
        assert 'id="payload"' in journey.text and DOVEDALE.upn in journey.text
        assert "cme" in journey.text.split('id="copies"')[1]  # a released copy, per recipient
    assert [a for a, _ in await _audit(running, "console.search")] == ["operator-1"]
    assert [a for a, _ in await _audit(running, "console.journey")] == ["operator-1"]


async def test_a_viewer_sees_no_payload_and_cannot_search_by_learner(running: RunningHub) -> None:
    await _send_child(running)
    async with browser(running) as client:
        await _logged_in(running, client, "viewer")
        listing = await client.get("/console/messages")
        assert 'name="upn"' not in listing.text
        link = listing.text.split('class="journey" href="')[1].split('"')[0]
        journey = await client.get(link)
        assert journey.status_code == 200 and 'id="payload-hidden"' in journey.text
        assert 'id="payload"' not in journey.text
        assert DOVEDALE.upn not in journey.text and DOVEDALE.refid not in journey.text
        refused = await client.post(
            "/console/messages", data={"csrf": csrf_of(listing.text), "upn": DOVEDALE.upn}
        )
        assert refused.status_code == 403
        assert (await client.get("/console/outbox")).status_code == 403  # operator's page


async def test_csrf_expiry_and_revocation_end_the_session(running: RunningHub) -> None:
    async with browser(running) as client:
        await _logged_in(running, client, "operator")
        no_token = await client.post("/console/messages", data={"school": "8304012"})
        assert no_token.status_code == 403 and "Form expired" in no_token.text
        bad_login = await client.post("/console/login", data={"token": "x", "csrf": "forged"})
        assert bad_login.status_code == 403
        revoke = await running.admin("POST", "/admin/users/revoke", json={"name": "operator-1"})
        assert revoke.status_code == 200, revoke.text
        assert (await client.get("/console/")).url.path == "/console/login"
    async with browser(running) as client:
        wrong = await log_in(client, "0123456789abcdef.not-the-secret")
        assert wrong.status_code == 401 and 'id="login-error"' in wrong.text
        client.cookies.set("sifhub_console", "tampered.value", path="/console")
        assert (await client.get("/console/")).url.path == "/console/login"


async def test_replay_shows_the_preview_then_requeues(running: RunningHub) -> None:
    await _send_child(running)
    async with running.hub.store.transaction() as tx:
        sent = len(await tx.disclosures.for_subject(upn=DOVEDALE.upn))
    async with browser(running) as client:
        await _logged_in(running, client, "operator")
        listing = await client.get("/console/messages")
        message_id = listing.text.split('name="ids" value="')[1].split('"')[0]
        preview = await client.post(
            "/console/replay", data={"csrf": csrf_of(listing.text), "ids": message_id}
        )
        assert preview.status_code == 200 and "Confirm replay" in preview.text
        assert "cme" in preview.text and "<LearnerPersonal" in preview.text.replace("&lt;", "<")
        async with running.hub.store.transaction() as tx:  # nothing sent before confirming
            assert len(await tx.disclosures.for_subject(upn=DOVEDALE.upn)) == sent
        done = await client.post(
            "/console/replay",
            data={"csrf": csrf_of(preview.text), "ids": message_id, "confirmed": "yes"},
        )
        assert done.status_code == 200 and 'id="done"' in done.text
    await running.settle()
    async with running.hub.store.transaction() as tx:
        assert len(await tx.disclosures.for_subject(upn=DOVEDALE.upn)) == 2 * sent
    assert [a for a, _ in await _audit(running, "console.replay_preview")] == ["operator-1"]
    assert [a for a, _ in await _audit(running, "message.replay")] == ["operator-1"]


async def test_a_parked_row_is_redriven_from_the_console(running: RunningHub) -> None:
    running.hub.dispatch.max_attempts = 2
    await _register_all(running)
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await (await connection.channel()).queue_delete(running.queue("cme"))
    xml = data.learner_attendance(DOVEDALE, DAY, "AM", "/")
    assert (await running.agent("dovedale-mis").send_event("LearnerAttendance", "Add", xml)).ok
    for _ in range(400):
        async with running.hub.store.transaction() as tx:
            if await tx.outbox.parked(10):
                break
        await asyncio.sleep(0.05)
    async with browser(running) as client:
        await _logged_in(running, client, "operator")
        page = await client.get("/console/outbox")
        assert "LearnerAttendance" in page.text.split('id="parked-rows"')[1]
        await running.hub.publisher.ensure_queues(["cme"])
        confirm = await client.post("/console/outbox/redrive", data={"csrf": csrf_of(page.text)})
        assert "Confirm: Re-drive" in confirm.text
        done = await client.post(
            "/console/outbox/redrive", data={"csrf": csrf_of(confirm.text), "confirmed": "yes"}
        )
        assert "Re-drove 1 parked row" in done.text
    await running.settle()
    assert len(await running.drain("cme", expect=1)) == 1
    assert [a for a, _ in await _audit(running, "outbox.redrive")] == ["operator-1"]


async def test_a_suspension_needs_attention_and_the_agreement_page_offers_reinstating(
    running: RunningHub,
) -> None:
    change = {"transition": "suspend", "reason": "breach review", "days": 30}
    done = await running.admin("POST", "/admin/agreements/DSA-CME-2026/lifecycle", json=change)
    assert done.status_code == 200, done.text
    async with browser(running) as client:
        await _logged_in(running, client, "dpo")
        attention = (await client.get("/console/")).text.split('id="attention"')[1]
        assert "DSA-CME-2026" in attention and "suspended: breach review" in attention
        page = await client.get("/console/agreements/DSA-CME-2026")
        assert page.status_code == 200 and 'id="status">suspended' in page.text
        assert 'value="reinstate"' in page.text and 'value="go_live"' not in page.text
        confirm = await client.post(
            "/console/agreements/DSA-CME-2026/lifecycle",
            data={"csrf": csrf_of(page.text), "transition": "reinstate", "reason": "cleared"},
        )
        assert "Confirm: reinstate" in confirm.text
        done_page = await client.post(
            "/console/agreements/DSA-CME-2026/lifecycle",
            data={
                "csrf": csrf_of(confirm.text),
                "transition": "reinstate",
                "reason": "cleared",
                "confirmed": "yes",
            },
        )
        assert 'id="status">live' in done_page.text
        preview = await client.post(
            "/console/agreements/DSA-CME-2026/preview",
            data={
                "csrf": csrf_of(done_page.text),
                "school": DOVEDALE.school.laestab,
                "message": _sample(DOVEDALE),
            },
        )
        assert preview.status_code == 200
        copy = preview.text.split('<pre class="copy">')[1]
        assert "cme" in preview.text.split("<h2>Preview</h2>")[1] and DOVEDALE.upn in copy
        assert (await client.get("/console/outbox")).status_code == 403  # the operator's page


async def test_a_dpo_downloads_a_subject_access_export(running: RunningHub) -> None:
    await _send_child(running)
    async with browser(running) as client:
        await _logged_in(running, client, "dpo")
        page = await client.get("/console/privacy")
        export = await client.post(
            "/console/privacy/export",
            data={"csrf": csrf_of(page.text), "learner": DOVEDALE.upn, "format": "json"},
        )
        assert export.status_code == 200
        assert export.headers["content-disposition"].startswith("attachment")
        body = export.json()
        assert body["count"] >= 1 and {d["upn"] for d in body["disclosures"]} == {DOVEDALE.upn}
    assert [a for a, _ in await _audit(running, "console.sar_export")] == ["dpo-1"]


async def test_console_pages_are_not_cached_nor_framed_and_bad_forms_get_a_page(
    running: RunningHub,
) -> None:
    async with browser(running) as client:
        await _logged_in(running, client, "operator")
        page = await client.get("/console/messages")
        assert page.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        bad = await client.post(
            "/console/agreements/DSA-CME-2026/held",
            data={"csrf": csrf_of(page.text), "decision": "publish-anyway"},
        )
        assert bad.status_code == 422 and "text/html" in bad.headers["content-type"]
    api = await running.admin("POST", "/admin/agreements/DSA-CME-2026/held", json={})
    assert api.status_code == 422 and api.headers["content-type"] == "application/problem+json"


async def test_why_a_message_was_refused_and_why_a_copy_is_held(running: RunningHub) -> None:
    await _register_all(running)
    agent = running.agent("dovedale-mis")
    bad = data.learner_personal(DOVEDALE).replace(DOVEDALE.birth_date.isoformat(), "2016-13-45")
    assert (await agent.send_event("LearnerPersonal", "Add", bad)).error_code == 4
    xml = data.learner_attendance(DOVEDALE, DAY, "AM", "/")
    assert (await agent.send_event("LearnerPersonal", "Add", data.learner_personal(DOVEDALE))).ok
    assert (await agent.send_event("LearnerAttendance", "Add", xml)).ok
    await running.settle()
    async with browser(running) as client:
        await _logged_in(running, client, "operator")
        form = await client.get("/console/messages")
        refused = await client.post(
            "/console/messages", data={"csrf": csrf_of(form.text), "status": "rejected"}
        )
        rows = refused.text.split('id="rejections"')[1].split("</table>")[0]
        assert "dovedale-mis" in rows and "1/4 (xml validation: invalid value)" in rows
        held = await client.post(
            "/console/messages", data={"csrf": csrf_of(form.text), "status": "held"}
        )
        link = held.text.split('class="journey" href="')[1].split('"')[0]
        journey = (await client.get(link)).text
        assert "LearnerAttendance" in journey
        assert "schedule" in journey.split('id="held"')[1].split("</table>")[0]


async def _dead_letter(running: RunningHub, message_id: str) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        dlq = running.queue("cme") + ".dlq"
        message = aio_pika.Message(
            b"<SIF_Message/>",
            message_id=message_id,
            headers={"hub-subscriber": "cme", "x-death": "gone"},
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await channel.default_exchange.publish(message, routing_key=dlq)


async def test_dead_letters_go_back_to_their_queue_by_api_and_console(
    running: RunningHub,
) -> None:
    await _dead_letter(running, "copy-by-api")
    moved = await running.admin("POST", "/admin/subscribers/cme/dead-letters/redrive", json={})
    assert moved.json() == {"subscriber": "cme", "moved": 1}, moved.text
    (copy,) = await running.drain("cme", expect=1)
    assert copy.message_id == "copy-by-api" and copy.headers["hub-subscriber"] == "cme"
    assert "x-death" not in copy.headers
    await _dead_letter(running, "copy-by-console")
    async with browser(running) as client:
        await _logged_in(running, client, "operator")
        page = await client.get("/console/outbox")
        assert 'id="dead-letters"' in page.text
        url = "/console/subscribers/cme/dead-letters/redrive"
        confirm = await client.post(url, data={"csrf": csrf_of(page.text)})
        assert "Confirm: Re-drive cme" in confirm.text
        done = await client.post(url, data={"csrf": csrf_of(confirm.text), "confirmed": "yes"})
        assert "Moved 1 dead letter" in done.text
    (copy,) = await running.drain("cme", expect=1)
    assert copy.message_id == "copy-by-console"
    actors = [a for a, _ in await _audit(running, "dead_letters.redrive")]
    assert actors == ["bootstrap", "operator-1"]


async def test_a_dpo_suppresses_and_lifts_a_learner_after_confirming(running: RunningHub) -> None:
    async with browser(running) as client:
        await _logged_in(running, client, "dpo")
        page = await client.get("/console/privacy")
        confirm = await client.post(
            "/console/privacy/suppress",
            data={"csrf": csrf_of(page.text), "learner": DOVEDALE.upn, "reason": "adopted"},
        )
        assert "Confirm: Suppress a learner" in confirm.text
        async with running.hub.store.transaction() as tx:
            assert await tx.privacy.suppressions() == []  # nothing before confirming
        done = await client.post(
            "/console/privacy/suppress",
            data={
                "csrf": csrf_of(confirm.text),
                "learner": DOVEDALE.upn,
                "reason": "adopted",
                "confirmed": "yes",
            },
        )
        assert "Suppressed" in done.text
        async with running.hub.store.transaction() as tx:
            (record,) = await tx.privacy.suppressions()
        assert record.learner == DOVEDALE.upn and record.created_by == "dpo-1"
        assert DOVEDALE.upn not in done.text  # the list shows no learner identifiers
        lifted = await client.post(
            f"/console/privacy/{record.id}/lift",
            data={"csrf": csrf_of(done.text), "reason": "entered in error", "confirmed": "yes"},
        )
        assert f"Lifted {record.id}" in lifted.text
    assert [a for a, _ in await _audit(running, "learner.unsuppressed")] == ["dpo-1"]


async def test_the_dashboard_shows_firing_alerts(running: RunningHub) -> None:
    now = running.clock.now
    state = AlertStateRecord(
        rule="parked_rows",
        subject="outbox",
        status="firing",
        since=now,
        firing_at=now,
        value=2.0,
        summary="2 parked outbox rows",
    )
    async with running.hub.store.transaction() as tx:
        await tx.alerts.save_state("parked_rows", "outbox", state)
    async with browser(running) as client:
        await _logged_in(running, client, "viewer")
        alerts = (await client.get("/console/")).text.split('id="alerts"')[1].split("</section>")[0]
        assert "parked_rows" in alerts and "2 parked outbox rows" in alerts
        assert 'id="no-alerts"' not in alerts
