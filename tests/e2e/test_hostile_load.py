"""Hostile load over HTTP, the real database and real RabbitMQ: SIF_PacketNumber is bounded
before anything is built from it, and wrong-password floods are refused (429) before argon2
runs, while real agents are still served (README, "Limits under hostile load")."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from hub.api import auth
from hub.api.admin_auth import mint_token
from hub.api.app import create_app
from hub.core.admins import Role
from hub.core.records import Actor
from hub.demo import SECRETS
from hub.pipeline import admin_users
from hub.simulate import sample_data as data
from hub.simulate import sif_messages as m
from hub.simulate.school_agent import Ack, SchoolAgent
from tests.e2e.conftest import RunningHub, hub_running

pytestmark = pytest.mark.integration

HILLTOP = "8302001"
AGENT = "hilltop-mis"
DEFAULT_MAX_PACKETS = 10_000  # HUB_MAX_PACKETS default; `running` uses the defaults


def _hilltop_learners(n: int) -> list[data.Learner]:
    found = [p for p in data.make_learners(n * 3 + 3) if p.school.laestab == HILLTOP][:n]
    assert len(found) == n
    return found


def _packet(agent: SchoolAgent, request: str, number: int | str, more: bool) -> bytes:
    learner = _hilltop_learners(1)[0]
    body = m.response(agent.agent_id, request, 1, more, [data.learner_personal(learner)])
    return body.replace(
        b"<SIF_PacketNumber>1</SIF_PacketNumber>",
        f"<SIF_PacketNumber>{number}</SIF_PacketNumber>".encode(),
    )


def _code(ack: Ack) -> tuple[int | None, int | None]:
    return ack.error_category, ack.error_code


async def _stored_packets(running: RunningHub, request: str) -> list[int]:
    async with running.hub.store.transaction() as tx:
        return [p.packet_number for p in await tx.registrations.packets(AGENT, request)]


# --- SIF_PacketNumber ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "number",
    [2_147_483_647, 30_000_000, 2**70, 2**64, DEFAULT_MAX_PACKETS + 1, "9" * 5000],
    ids=["int32-max", "30-million", "2**70", "2**64", "bound+1", "5000-digits"],
)
async def test_packet_number_above_the_bound_is_refused_for_good(
    running: RunningHub, number: int | str, caplog: pytest.LogCaptureFixture
) -> None:
    agent = running.agent(AGENT)
    assert (await agent.register("Push")).ok
    request = m.msg_id()
    with caplog.at_level(logging.INFO):
        for more in (False, True):  # claimed as the last packet, and as one of many
            ack = await agent.post(_packet(agent, request, number, more))
            assert ack.http_status == 200
            # never 11/1 ("send again"): the SIF code for a bad packet number, final
            assert _code(ack) == (8, 12), ack.raw
            assert ack.desc is not None and "do not send this packet again" in ack.desc
            assert str(DEFAULT_MAX_PACKETS) in ack.desc
    assert await _stored_packets(running, request) == []
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


@pytest.mark.parametrize("number", ["0", "-1", "abc", "1.5"])
async def test_packet_number_that_is_no_positive_number_is_a_validation_error(
    running: RunningHub, number: str
) -> None:
    agent = running.agent(AGENT)
    assert (await agent.register("Push")).ok
    request = m.msg_id()
    ack = await agent.post(_packet(agent, request, number, False))
    assert ack.error_category in (1, 8), ack.raw  # the XSD's positiveInteger, or 8/12
    assert ack.error_category != 11
    assert await _stored_packets(running, request) == []


async def test_packet_number_at_the_bound_is_kept_and_reassembly_uses_what_is_present(
    running: RunningHub,
) -> None:
    agent = running.agent(AGENT)
    assert (await agent.register("Push")).ok
    request = m.msg_id()
    # the last of 10,000 packets arrives first: kept, and the set is not complete
    last = await agent.post(_packet(agent, request, DEFAULT_MAX_PACKETS, False))
    assert last.ok, last.raw
    assert (await agent.post(_packet(agent, request, 1, True))).ok
    assert await _stored_packets(running, request) == [1, DEFAULT_MAX_PACKETS]
    await running.settle()
    async with running.hub.store.transaction() as tx:
        assert (await tx.disclosures.stats()).routed == {}  # incomplete: nothing routed


async def test_a_lower_bound_is_configurable_and_a_complete_set_still_routes(
    database_url: str, tmp_path: Path
) -> None:
    async with hub_running(database_url, tmp_path, max_packets=2) as running:
        agent = running.agent(AGENT)
        assert (await agent.register("Push")).ok
        request = m.msg_id()
        refused = await agent.post(_packet(agent, request, 3, False))
        assert _code(refused) == (8, 12) and refused.desc and "limit of 2" in refused.desc
        assert (await agent.post(_packet(agent, request, 2, False))).ok
        assert (await agent.post(_packet(agent, request, 1, True))).ok
        await running.settle()
        async with running.hub.store.transaction() as tx:
            routed = (await tx.disclosures.stats()).routed
        assert routed.get("LearnerPersonal", 0) >= 1  # both packets in: the set was routed


# --- wrong-password floods ------------------------------------------------------------------

ATTACKER = ("203.0.113.9", 40000)
SCHOOL = ("198.51.100.20", 40001)
OTHER_SCHOOL = ("192.0.2.30", 40002)


class Argon2Spy:
    """Counts argon2 verifications and how many ran at once (wraps the real one)."""

    def __init__(self, real: Callable[[str, str], bool]) -> None:
        self.real, self.calls, self.running, self.most = real, 0, 0, 0
        self._lock = threading.Lock()

    def __call__(self, secret_hash: str, secret: str) -> bool:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return self.real(secret_hash, secret)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def argon2(monkeypatch: pytest.MonkeyPatch) -> Argon2Spy:
    spy = Argon2Spy(auth._verify)
    monkeypatch.setattr(auth, "_verify", spy)
    return spy


@asynccontextmanager
async def _clients(running: RunningHub) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """One app (one throttle), reached from several client addresses."""
    app = create_app(running.hub)
    async with contextlib.AsyncExitStack() as stack:
        yield {
            name: await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app, client=address),
                    base_url="http://hub",
                    timeout=30,
                )
            )
            for name, address in (
                ("attacker", ATTACKER),
                ("school", SCHOOL),
                ("other", OTHER_SCHOOL),
            )
        }


def _as(client: httpx.AsyncClient, running: RunningHub, agent_id: str, secret: str) -> SchoolAgent:
    return SchoolAgent(client, running.config.zones[0], agent_id, secret)


async def test_failures_past_the_burst_get_429_with_retry_after_and_no_argon2(
    database_url: str, tmp_path: Path, argon2: Argon2Spy
) -> None:
    async with (
        hub_running(
            database_url, tmp_path, auth_failure_burst=3, auth_failure_interval_seconds=60
        ) as running,
        _clients(running) as clients,
    ):
        attacker = _as(clients["attacker"], running, AGENT, "not-the-secret")
        answers = [await attacker.post(m.system_control(AGENT, "SIF_Ping")) for _ in range(8)]
        assert [a.http_status for a in answers] == [401] * 3 + [429] * 5
        assert argon2.calls == 3  # refused before argon2 ran
        response = await clients["attacker"].post(
            f"/sif/{running.config.zones[0]}",
            content=m.system_control(AGENT, "SIF_Ping"),
            auth=(AGENT, "not-the-secret"),
        )
        assert response.status_code == 429
        assert response.headers["content-type"] == "application/problem+json"
        assert 1 <= int(response.headers["retry-after"]) <= 60
        assert response.json()["status"] == 429
        # an unknown agent id from the same address is refused the same way (by address)
        stranger = _as(clients["attacker"], running, "no-such-agent", "x")
        assert (
            await stranger.post(m.system_control("no-such-agent", "SIF_Ping"))
        ).http_status == 429
        assert argon2.calls == 3


async def test_real_agents_are_served_during_a_flood_on_their_id(
    database_url: str, tmp_path: Path, argon2: Argon2Spy
) -> None:
    async with (
        hub_running(
            database_url, tmp_path, auth_failure_burst=3, auth_failure_interval_seconds=60
        ) as running,
        _clients(running) as clients,
    ):
        school = _as(clients["school"], running, AGENT, SECRETS[AGENT])
        assert (await school.register("Push")).ok
        attacker = _as(clients["attacker"], running, AGENT, "guess")
        flood = await asyncio.gather(
            *(attacker.post(m.system_control(AGENT, "SIF_Ping")) for _ in range(48))
        )
        statuses = sorted(a.http_status for a in flood)
        assert statuses == [401] * 3 + [429] * 45  # charged before argon2: 3 ran, not 48
        # the real agent, from its own address, is still served (its id's failures are spent)
        ping = await school.post(m.system_control(AGENT, "SIF_Ping"))
        assert ping.ok, ping.raw
        assert (
            await school.send_event(
                "LearnerPersonal", "Add", data.learner_personal(_hilltop_learners(1)[0])
            )
        ).ok
        # another school's agent, from another address, is untouched by the flood
        other_id = next(a.id for a in running.config.agents if a.id != AGENT)
        other = _as(clients["other"], running, other_id, SECRETS[other_id])
        assert (await other.post(m.system_control(other_id, "SIF_Ping"))).http_status == 200
        # and the attacker is still refused
        assert (await attacker.post(m.system_control(AGENT, "SIF_Ping"))).http_status == 429


async def test_argon2_runs_at_most_auth_max_concurrent_at_once(
    database_url: str, tmp_path: Path, argon2: Argon2Spy
) -> None:
    async with (
        hub_running(database_url, tmp_path, auth_failure_burst=6, auth_max_concurrent=2) as running,
        _clients(running) as clients,
    ):
        # Distinct guesses: identical concurrent ones share one verification (below).
        guesses = [_as(clients["attacker"], running, AGENT, f"guess{i}") for i in range(6)]
        flood = await asyncio.gather(
            *(g.post(m.system_control(AGENT, "SIF_Ping")) for g in guesses)
        )
        assert [a.http_status for a in flood] == [401] * 6
        assert argon2.calls == 6
        assert argon2.most <= 2


async def test_identical_concurrent_guesses_share_one_argon2_run(
    database_url: str, tmp_path: Path, argon2: Argon2Spy
) -> None:
    async with (
        hub_running(database_url, tmp_path, auth_failure_burst=6, auth_max_concurrent=2) as running,
        _clients(running) as clients,
    ):
        attacker = _as(clients["attacker"], running, AGENT, "guess")
        flood = await asyncio.gather(
            *(attacker.post(m.system_control(AGENT, "SIF_Ping")) for _ in range(6))
        )
        assert [a.http_status for a in flood] == [401] * 6  # each refused, each charged
        assert argon2.calls < 6


async def test_admin_token_guesses_share_the_throttle_and_the_argon2_bound(
    database_url: str, tmp_path: Path, argon2: Argon2Spy
) -> None:
    """A flood of wrong secrets on a real admin key id costs argon2 only until the throttle
    refuses it; the user, already verified, is still served."""
    async with (
        hub_running(
            database_url, tmp_path, auth_failure_burst=3, auth_failure_interval_seconds=60
        ) as running,
        _clients(running) as clients,
    ):
        token = mint_token()
        async with running.hub.store.transaction() as tx:
            await admin_users.add_user(
                tx,
                "ops-user",
                Role.OPERATOR,
                key_id=token.key_id,
                secret_hash=token.secret_hash,
                actor=Actor("test"),
                now=running.clock(),
            )
        real = {"Authorization": f"Bearer {token.token}"}
        assert (await clients["school"].get("/admin/stats", headers=real)).status_code == 200
        calls_before = argon2.calls
        guess = {"Authorization": f"Bearer {token.key_id}.not-the-secret"}
        statuses = [
            (await clients["attacker"].get("/admin/stats", headers=guess)).status_code
            for _ in range(8)
        ]
        assert statuses == [401] * 3 + [429] * 5
        assert argon2.calls - calls_before == 3
        refused = await clients["attacker"].get("/admin/stats", headers=guess)
        assert refused.headers["content-type"] == "application/problem+json"
        assert int(refused.headers["retry-after"]) >= 1
        assert (await clients["school"].get("/admin/stats", headers=real)).status_code == 200
