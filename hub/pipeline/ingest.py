"""Where a message enters: an agent's SIF_Message becomes durable rows, then an ack.

Parse (hardened) -> sniff -> XSD validate -> check the agent's rights -> ONE transaction
(message + outbox + audit) -> SIF_Ack. Every refusal is a SifError rendered as SIF_Error;
nothing refused is stored for routing, nothing acked is lost.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree

from hub.core.config import Agent, HubConfig
from hub.core.envelope import (
    HUB_VERSION,
    SUPPORTED_VERSIONS,
    Action,
    MessageKind,
    version_matches,
)
from hub.core.errors import (
    Access,
    Category,
    Generic,
    RequestResponse,
    SifError,
    access_error,
    generic_error,
    registration_error,
    response_error,
    system_error,
)
from hub.core.errors import (
    Registration as RegCode,
)
from hub.core.naming import subscriber_queue
from hub.core.objects import CATALOGUE
from hub.core.ports import (
    NO_METRICS,
    BrokerUnavailable,
    DuplicateMessage,
    Metrics,
    PullSource,
    Store,
    StoreUnavailable,
    Tx,
)
from hub.core.records import (
    AuditRecord,
    Learnt,
    MessageRecord,
    OutboxRecord,
    PacketRecord,
    Registration,
    RejectionRecord,
    Staged,
)
from hub.core.schools import SchoolIndex
from hub.pipeline.offload import Offload
from hub.pipeline.resolve import Entry, Resolved, Sender, resolve
from hub.sif import build
from hub.sif.envelope import (
    Sniffed,
    echo_ids,
    peek_object_name,
    read_ack,
    read_event,
    read_header,
    read_object_names,
    read_register,
    read_response,
    read_system_control,
    response_objects,
    sniff,
)
from hub.sif.parse import parse_trusted, parse_untrusted
from hub.sif.schemas import Schemas

log = logging.getLogger("hub.ingest")

STATUS_SUCCESS = 0
STATUS_DUPLICATE = 7
STATUS_NO_MESSAGES = 9
MIN_BUFFER = 4096


@dataclass(frozen=True)
class IngestContext:
    store: Store
    config: HubConfig
    schools: SchoolIndex
    schemas: Schemas
    pull: PullSource
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    # Why the hub must not take more work now (routing too far behind), or None.
    behind: Callable[[], str | None] = lambda: None
    metrics: Metrics = NO_METRICS
    # SIF_PacketNumber above this is refused (8/12) before anything is stored or built.
    max_packets: int = 10_000
    # Parsing and validating a large body runs in a worker thread (bounded), off the loop.
    offload: Offload = field(default_factory=Offload)
    # Told after a commit that gave routing new work (wakes the dispatcher at once).
    routed: Callable[[], None] = lambda: None


@dataclass(frozen=True)
class Incoming:
    """An authenticated agent's request, as the HTTP edge hands it over."""

    agent: Agent
    zone: str
    body: bytes


@dataclass(frozen=True)
class _Ctx:
    """Per-message values every handler needs."""

    hub: IngestContext
    incoming: Incoming
    sniffed: Sniffed
    root: etree._Element

    def ok(
        self,
        code: int = STATUS_SUCCESS,
        desc: str | None = None,
        data: etree._Element | None = None,
    ) -> bytes:
        s = self.sniffed
        return build.ack_status(
            s.version, self.hub.config.source_id, s.source_id, s.msg_id, code, desc, data
        )


async def handle(hub: IngestContext, incoming: Incoming) -> bytes:
    """Answer one agent message with a SIF_Ack (success or SIF_Error); never raises SifError."""
    started = time.perf_counter()
    body = incoming.body
    read = await hub.offload.run(len(body), lambda: _read(body, hub.schemas))
    try:
        if read.error is not None:
            raise read.error
        assert read.sniffed is not None and read.root is not None
        reply = await _dispatch_kind(_Ctx(hub, incoming, read.sniffed, read.root))
        _observe(hub, read.sniffed, read.object_name, None, started)
        return reply
    except SifError as error:
        await _record_rejection(hub, incoming, error, read.object_name)
        _observe(hub, read.sniffed, read.object_name, error, started)
        log.info(
            "ingest.refused agent=%s zone=%s msg=%s category=%d code=%d",
            incoming.agent.id,
            incoming.zone,
            read.msg_id,
            error.category,
            error.code,
        )
        return build.ack_error(
            read.version,
            hub.config.source_id,
            read.source or incoming.agent.id,
            read.msg_id,
            error,
        )


@dataclass
class _Read:
    """What parsing and validation gave; on a refusal, what could be read for the ack."""

    version: str = "2.4"
    source: str | None = None
    msg_id: str | None = None
    object_name: str | None = None
    root: etree._Element | None = None
    sniffed: Sniffed | None = None
    error: SifError | None = None


def _read(body: bytes, schemas: Schemas) -> _Read:
    """Parse (hardened), sniff and validate: CPU only, no I/O, so it may run in a thread."""
    read = _Read()
    try:
        root = parse_untrusted(body)
        read.source, read.msg_id = echo_ids(root)
        read.object_name = peek_object_name(root)
        read.sniffed = sniffed = sniff(root)  # known for the refusal's ack and metrics too
        read.version = sniffed.version
        partial = sniffed.event_action in (Action.CHANGE, Action.DELETE)
        schemas.validate_message(root, partial=partial)
        read.root = root
    except SifError as error:
        read.error = error
    return read


async def _dispatch_kind(ctx: _Ctx) -> bytes:
    kind = ctx.sniffed.kind
    header = read_header(ctx.sniffed.body)
    if header.source_id != ctx.incoming.agent.id:
        raise access_error(
            Access.GENERIC, f"SIF_SourceId {header.source_id} is not the authenticated agent"
        )
    handler = _HANDLERS.get(kind)
    if handler is None:
        raise generic_error(
            Generic.MESSAGE_NOT_SUPPORTED, f"{kind.value} is not supported by this hub"
        )
    try:
        return await handler(ctx)
    except StoreUnavailable:
        raise system_error("The hub's database is unavailable; retry later") from None
    except BrokerUnavailable:
        raise system_error("The hub's message broker is unavailable; retry later") from None


# --- registration and provisioning -------------------------------------------------------


async def _register(ctx: _Ctx) -> bytes:
    req = read_register(ctx.sniffed.body)
    versions = tuple(
        v for v in req.versions if any(version_matches(v, s) for s in SUPPORTED_VERSIONS)
    )
    if not versions:
        raise registration_error(
            RegCode.VERSION_UNSUPPORTED,
            f"None of the SIF versions {', '.join(req.versions)} is supported",
        )
    if req.max_buffer_size < MIN_BUFFER:
        raise registration_error(
            RegCode.BUFFER_TOO_SMALL, f"SIF_MaxBufferSize must be at least {MIN_BUFFER}"
        )
    agent, zone = ctx.incoming.agent.id, ctx.incoming.zone
    reg = Registration(agent, zone, req.mode, req.versions, req.max_buffer_size, ctx.hub.clock())
    async with ctx.hub.store.transaction() as tx:
        old = await tx.registrations.get(agent, zone)
        if old is not None:  # re-registering keeps what the agent provided and subscribed
            reg = Registration(
                agent,
                zone,
                req.mode,
                req.versions,
                req.max_buffer_size,
                reg.registered_at,
                old.provides,
                old.subscribes,
            )
        await tx.registrations.save(reg)
        await _audit(ctx, tx, "agent.register", {"mode": req.mode, "versions": list(req.versions)})
    return ctx.ok()


async def _unregister(ctx: _Ctx) -> bytes:
    async with ctx.hub.store.transaction() as tx:
        await tx.registrations.delete(ctx.incoming.agent.id, ctx.incoming.zone)
        await _audit(ctx, tx, "agent.unregister", {})
    return ctx.ok()


async def _provision(ctx: _Ctx) -> bytes:
    kind = ctx.sniffed.kind
    names = read_object_names(ctx.sniffed.body)
    unknown = [n for n in names if n not in CATALOGUE]
    if unknown:
        category = Category.PROVISION if kind in _PROVIDES else Category.SUBSCRIPTION
        raise SifError(category, 3, f"Unknown object {', '.join(unknown)}")
    async with ctx.hub.store.transaction() as tx:
        reg = await _registered(ctx, tx)
        provides, subscribes = set(reg.provides), set(reg.subscribes)
        target = provides if kind in _PROVIDES else subscribes
        if kind in (MessageKind.PROVIDE, MessageKind.SUBSCRIBE):
            target.update(names)
        else:
            target.difference_update(names)
        await tx.registrations.save(
            Registration(
                reg.agent_id,
                reg.zone,
                reg.mode,
                reg.versions,
                reg.max_buffer_size,
                reg.registered_at,
                tuple(sorted(provides)),
                tuple(sorted(subscribes)),
            )
        )
        await _audit(
            ctx, tx, f"agent.{kind.value.removeprefix('SIF_').lower()}", {"objects": names}
        )
    return ctx.ok()


_PROVIDES = (MessageKind.PROVIDE, MessageKind.UNPROVIDE)


async def _registered(ctx: _Ctx, tx: Tx) -> Registration:
    reg = await tx.registrations.get(ctx.incoming.agent.id, ctx.incoming.zone)
    if reg is None:
        raise access_error(
            Access.NOT_REGISTERED,
            f"Agent {ctx.incoming.agent.id} is not registered in zone {ctx.incoming.zone}",
        )
    return reg


# --- events and responses ---------------------------------------------------------------


def _refuse_if_behind(ctx: _Ctx) -> None:
    """Backpressure: not accepted, so nothing is promised; the agent sends it again."""
    reason = ctx.hub.behind()
    if reason is not None:
        raise system_error(f"The hub is behind ({reason}); send again later")


async def _event(ctx: _Ctx) -> bytes:
    """Checked and staged inside a group commit (hub.store.group): acked only once the
    transaction holding its rows, shared with other requests, has committed."""
    _refuse_if_behind(ctx)
    header = read_header(ctx.sniffed.body)
    event = read_event(ctx.sniffed.body)
    message_id = uuid.uuid4().hex
    object_xml = await ctx.hub.offload.run(
        len(ctx.incoming.body), lambda: etree.tostring(event.element, encoding="UTF-8")
    )
    entry = Entry(element=event.element, action=event.action, object_xml=object_xml)

    routed = False

    async def stage(tx: Tx) -> Staged | None:  # reads only: the group writes what it returns
        nonlocal routed
        await _registered(ctx, tx)
        if await tx.messages.exists(ctx.incoming.agent.id, header.msg_id):
            return None
        (answer,) = await resolve(tx, ctx.hub.schools, _sender(ctx, message_id), [entry])
        if isinstance(answer, SifError):
            raise answer
        item = answer.item
        routed = item is not None
        school = item.school if item else None
        record = _message_record(
            ctx, message_id, header.msg_id, event.object_name, event.action, school
        )
        detail: dict[str, object] = {
            "message_id": message_id,
            "object": event.object_name,
            "action": event.action.value,
            "refid": event.element.get("RefId"),
        }
        return Staged(
            message=record,
            outbox=(item,) if item else (),
            audit=(_audit_record(ctx, "message.accepted", detail),),
            learnt=(answer.learnt,) if answer.learnt else (),
            at=ctx.hub.clock(),
        )

    staged = await ctx.hub.store.accept(
        stage, agent_id=ctx.incoming.agent.id, sif_msg_id=header.msg_id
    )
    if not staged:
        return ctx.ok(STATUS_DUPLICATE, "Already have a message with this SIF_MsgId")
    if routed:
        ctx.hub.routed()
    return ctx.ok()


def _sender(ctx: _Ctx, message_id: str) -> Sender:
    return Sender(
        agent=ctx.incoming.agent,
        zone=ctx.incoming.zone,
        message_id=message_id,
        event=ctx.sniffed.kind is MessageKind.EVENT,
    )


async def _remember(ctx: _Ctx, tx: Tx, learnt: Sequence[Learnt]) -> None:
    """Remember what accepted objects taught, in a few statements (as the group commit
    does); copies that awaited these identities become due."""
    learners, objects = await tx.learners.remember_many(learnt)
    if learners or objects:
        await tx.held.wake_identities(ctx.hub.clock(), learners=learners, object_refids=objects)


def _message_record(
    ctx: _Ctx,
    message_id: str,
    sif_msg_id: str,
    object_name: str | None,
    action: Action | None,
    school: str | None,
) -> MessageRecord:
    return MessageRecord(
        id=message_id,
        agent_id=ctx.incoming.agent.id,
        zone=ctx.incoming.zone,
        sif_msg_id=sif_msg_id,
        kind=ctx.sniffed.kind,
        version=ctx.sniffed.version,
        received_at=ctx.hub.clock(),
        payload=ctx.incoming.body,
        object_name=object_name,
        action=action,
        school=school,
    )


async def _response(ctx: _Ctx) -> bytes:
    """Keep each packet; when the last one is in, route every object of every packet."""
    _refuse_if_behind(ctx)
    header = read_header(ctx.sniffed.body)
    packet = read_response(ctx.sniffed.body, ctx.hub.max_packets)
    message_id = uuid.uuid4().hex
    agent_id = ctx.incoming.agent.id
    async with ctx.hub.store.transaction() as tx:
        await _registered(ctx, tx)
        if await tx.messages.exists(agent_id, header.msg_id):
            return ctx.ok(STATUS_DUPLICATE, "Already have a message with this SIF_MsgId")
        earlier = await tx.registrations.packets(agent_id, packet.request_msg_id)
        if any(p.packet_number == packet.packet_number for p in earlier):
            raise response_error(
                RequestResponse.INVALID_PACKET_NUMBER,
                f"Packet {packet.packet_number} of request "
                f"{packet.request_msg_id} was already received",
            )
        this = PacketRecord(
            agent_id, packet.request_msg_id, packet.packet_number, packet.more_packets, message_id
        )
        packets = sorted([*earlier, this], key=lambda p: p.packet_number)
        complete = _complete(packets)
        # Rights are checked now: the packet is refused, not the batch later. Once the
        # last packet is in, every packet's objects are judged again, in packet order.
        batch = await _packet_objects(tx, packets, this, packet.objects) if complete else []
        elements = [o.element for o in batch] if complete else packet.objects
        entries = [Entry(element=e, action=Action.ADD) for e in elements]
        answers = await resolve(tx, ctx.hub.schools, _sender(ctx, message_id), entries)
        accepted = [a for a in answers if not isinstance(a, SifError)]
        if len(accepted) < len(answers):
            raise next(a for a in answers if isinstance(a, SifError))
        mine = accepted[len(accepted) - len(packet.objects) :] if packet.objects else []
        await _remember(ctx, tx, [a.learnt for a in mine if a.learnt])
        try:
            await tx.messages.add(_message_record(ctx, message_id, header.msg_id, None, None, None))
        except DuplicateMessage:
            return ctx.ok(STATUS_DUPLICATE, "Already have a message with this SIF_MsgId")
        await tx.registrations.add_packet(this)
        if complete:
            await tx.outbox.add(_numbered(batch, accepted))
        await _audit(
            ctx,
            tx,
            "response.packet",
            {
                "message_id": message_id,
                "request": packet.request_msg_id,
                "packet": packet.packet_number,
                "complete": complete,
            },
        )
    if complete:
        ctx.hub.routed()
    return ctx.ok()


def _complete(packets: list[PacketRecord]) -> bool:
    """Every number 1..last is in: judged from the packets present (distinct numbers of 1
    or more, sorted), never from a range over the number a packet claims."""
    last = min((p.packet_number for p in packets if not p.more_packets), default=None)
    return last is not None and len(packets) == last and packets[-1].packet_number == last


@dataclass(frozen=True)
class _PacketObject:
    """One object of a complete response, and the packet message it came in."""

    message_id: str
    element: etree._Element


async def _packet_objects(
    tx: Tx, packets: list[PacketRecord], this: PacketRecord, objects: list[etree._Element]
) -> list[_PacketObject]:
    """Every object of every packet, in packet order (this packet's from its parsed body,
    the earlier ones' from their stored payloads)."""
    found: list[_PacketObject] = []
    for packet in packets:
        if packet is this:
            elements = objects
        else:
            payload = await tx.messages.payload(packet.message_id)
            assert payload is not None
            body = next(iter(parse_trusted(payload).iterchildren(tag=etree.Element)))
            elements = response_objects(body)
        found += [_PacketObject(packet.message_id, element) for element in elements]
    return found


def _numbered(batch: list[_PacketObject], accepted: list[Resolved]) -> list[OutboxRecord]:
    """The routable objects' rows, each under its own packet's message, numbered in order."""
    rows = [
        (obj, answer.item)
        for obj, answer in zip(batch, accepted, strict=True)
        if answer.item is not None
    ]
    return [
        dataclasses.replace(item, message_id=obj.message_id, seq=seq)
        for seq, (obj, item) in enumerate(rows)
    ]


# --- objects from an edge format (a CSV upload) ------------------------------------------


async def add_objects(
    hub: IngestContext,
    tx: Tx,
    incoming: Incoming,
    *,
    sif_msg_id: str,
    objects: Sequence[Entry],
) -> list[SifError | None] | None:
    """Store objects that arrived outside a SIF_Message (a chunk of a CSV upload, already
    XSD-validated) as one accepted message of Add events, inside the caller's transaction:
    the same school checks, learning, outbox rows and audit row as an agent's SIF_Event.
    One answer per object (None: accepted; a refusal leaves no trace of that object); None
    when the agent already sent `sif_msg_id` (nothing stored again)."""
    if await tx.messages.exists(incoming.agent.id, sif_msg_id):
        return None
    ctx = _edge_ctx(hub, incoming, sif_msg_id)
    message_id = uuid.uuid4().hex
    answers = await resolve(tx, hub.schools, _sender(ctx, message_id), objects)
    accepted = [a for a in answers if not isinstance(a, SifError)]
    await _remember(ctx, tx, [a.learnt for a in accepted if a.learnt])
    items = [a.item for a in accepted if a.item is not None]
    names = {etree.QName(o.element).localname for o in objects}
    name = names.pop() if len(names) == 1 else None
    await tx.messages.add(_message_record(ctx, message_id, sif_msg_id, name, Action.ADD, None))
    await tx.outbox.add(items)
    detail: dict[str, object] = {"message_id": message_id, "object": name, "objects": len(items)}
    await _audit(ctx, tx, "message.accepted", detail)
    return [a if isinstance(a, SifError) else None for a in answers]


def _edge_ctx(hub: IngestContext, incoming: Incoming, sif_msg_id: str) -> _Ctx:
    """The context of an Add SIF_Event from this agent, for objects that came without one."""
    body = etree.Element("SIF_Event")
    sniffed = Sniffed(
        HUB_VERSION, MessageKind.EVENT, body, sif_msg_id, incoming.agent.id, Action.ADD
    )
    return _Ctx(hub, incoming, sniffed, body)


# --- system control and pull delivery ---------------------------------------------------


async def _system_control(ctx: _Ctx) -> bytes:
    command = read_system_control(ctx.sniffed.body)
    if command in ("SIF_Ping", "SIF_Sleep", "SIF_Wakeup"):
        return ctx.ok()
    if command == "SIF_GetMessage":
        return await _get_message(ctx)
    raise generic_error(Generic.MESSAGE_NOT_SUPPORTED, f"{command} is not supported by this hub")


def _pull_queue(ctx: _Ctx) -> str | None:
    agent_id = ctx.incoming.agent.id
    sub = next((s for s in ctx.hub.config.subscribers if s.pull_agent == agent_id), None)
    return subscriber_queue(sub.id, ctx.hub.config.queue_prefix) if sub else None


async def _get_message(ctx: _Ctx) -> bytes:
    async with ctx.hub.store.transaction() as tx:
        reg = await _registered(ctx, tx)
    if reg.mode != "Pull":
        raise registration_error(
            RegCode.PUSH_AGENT_PULLING,
            "Agent is registered in Push mode; SIF_GetMessage is for Pull mode",
        )
    queue = _pull_queue(ctx)
    pulled = await ctx.hub.pull.next_message(queue) if queue else None
    if pulled is None:
        return ctx.ok(STATUS_NO_MESSAGES, "No messages available")
    return ctx.ok(STATUS_SUCCESS, data=parse_trusted(pulled.body))


async def _ack(ctx: _Ctx) -> bytes:
    """A pull-mode agent acknowledges the message it was handed; the disclosure log
    records that the recipient has it."""
    _, original = read_ack(ctx.sniffed.body)
    queue = _pull_queue(ctx)
    if queue is None or not await ctx.hub.pull.ack(queue, original):
        raise generic_error(
            Generic.NO_SUCH_MESSAGE, f"No delivered message {original} awaits an ack"
        )
    async with ctx.hub.store.transaction() as tx:
        await tx.disclosures.acknowledge([original], ctx.hub.clock())
    return ctx.ok()


_HANDLERS = {
    MessageKind.REGISTER: _register,
    MessageKind.UNREGISTER: _unregister,
    MessageKind.PROVIDE: _provision,
    MessageKind.UNPROVIDE: _provision,
    MessageKind.SUBSCRIBE: _provision,
    MessageKind.UNSUBSCRIBE: _provision,
    MessageKind.EVENT: _event,
    MessageKind.RESPONSE: _response,
    MessageKind.SYSTEM_CONTROL: _system_control,
    MessageKind.ACK: _ack,
}


# --- records ----------------------------------------------------------------------------


async def _audit(ctx: _Ctx, tx: Tx, action: str, detail: dict[str, object]) -> None:
    await tx.audit.add(_audit_record(ctx, action, detail))


def _audit_record(ctx: _Ctx, action: str, detail: dict[str, object]) -> AuditRecord:
    return AuditRecord(
        ctx.hub.clock(), f"agent:{ctx.incoming.agent.id}", action, ctx.incoming.zone, dict(detail)
    )


async def _record_rejection(
    hub: IngestContext, incoming: Incoming, error: SifError, object_name: str | None
) -> None:
    """Best effort: a rejection is counted when the database is up, never blocks the answer."""
    if error.category == Category.SYSTEM:
        return
    try:
        async with hub.store.transaction() as tx:
            await tx.audit.add_rejection(
                RejectionRecord(
                    hub.clock(),
                    incoming.agent.id,
                    incoming.zone,
                    int(error.category),
                    error.code,
                    object_name,
                )
            )
    except StoreUnavailable:
        log.warning("ingest.rejection_not_recorded agent=%s", incoming.agent.id)


def _observe(
    hub: IngestContext,
    sniffed: Sniffed | None,
    object_name: str | None,
    error: SifError | None,
    started: float,
) -> None:
    action = sniffed.event_action if sniffed else None
    hub.metrics.ingested(
        kind=sniffed.kind.value if sniffed else None,
        object_name=object_name,
        action=action.value if action else None,
        error=error,
        seconds=time.perf_counter() - started,
    )
