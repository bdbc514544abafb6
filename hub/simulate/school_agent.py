"""A simulated school MIS agent: posts SIF messages to the hub over HTTP and reads the acks.

URL form: http(s)://host:port/sif/{zone}, HTTP Basic with the agent's id and secret.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from lxml import etree

from hub.core.envelope import SIF_UK_NS
from hub.simulate import sif_messages as m

_NS = {"s": SIF_UK_NS}


@dataclass(frozen=True)
class Ack:
    http_status: int
    status_code: int | None
    error_category: int | None
    error_code: int | None
    desc: str | None
    original_msg_id: str | None
    data: etree._Element | None
    raw: bytes

    @property
    def ok(self) -> bool:
        return self.status_code in (0, 1) and self.error_category is None


def read_ack(http_status: int, body: bytes) -> Ack:
    if http_status != 200:
        return Ack(http_status, None, None, None, None, None, None, body)
    root = etree.fromstring(body)
    ack = root.find("s:SIF_Ack", _NS)
    assert ack is not None, body

    def number(path: str) -> int | None:
        text = ack.findtext(path, None, _NS)
        return int(text) if text else None

    desc = ack.findtext("s:SIF_Error/s:SIF_Desc", None, _NS) or ack.findtext(
        "s:SIF_Status/s:SIF_Desc", None, _NS
    )
    data = ack.find("s:SIF_Status/s:SIF_Data/s:SIF_Message", _NS)
    return Ack(
        http_status,
        number("s:SIF_Status/s:SIF_Code"),
        number("s:SIF_Error/s:SIF_Category"),
        number("s:SIF_Error/s:SIF_Code"),
        desc,
        ack.findtext("s:SIF_OriginalMsgId", None, _NS),
        data,
        body,
    )


class SchoolAgent:
    def __init__(self, client: httpx.AsyncClient, zone: str, agent_id: str, secret: str) -> None:
        self.client, self.zone, self.agent_id = client, zone, agent_id
        self._auth = httpx.BasicAuth(agent_id, secret)

    async def post(self, body: bytes) -> Ack:
        response = await self.client.post(
            f"/sif/{self.zone}",
            content=body,
            auth=self._auth,
            headers={"Content-Type": "application/xml"},
        )
        return read_ack(response.status_code, response.content)

    async def register(self, mode: str = "Pull") -> Ack:
        return await self.post(m.register(self.agent_id, mode))

    async def send_event(
        self, object_name: str, action: str, object_xml: str, message_id: str | None = None
    ) -> Ack:
        return await self.post(m.event(self.agent_id, object_name, action, object_xml, message_id))

    async def get_message(self) -> Ack:
        return await self.post(m.system_control(self.agent_id, "SIF_GetMessage"))

    async def ack(self, original_msg_id: str) -> Ack:
        return await self.post(m.ack(self.agent_id, "SIFHub", original_msg_id))
