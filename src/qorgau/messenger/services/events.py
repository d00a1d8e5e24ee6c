"""Room events: drafting (id and sealed content chosen outside the transaction), appending, reading.

Appending an event emits a kernel event in the same transaction; its stream id is the event's order
(`messenger_events.stream_id`), so /sync, /messages and every derived table agree on one sequence.
Contents are sealed per event (envelope encryption bound to the event id) before the write job runs,
so the single group-commit writer thread spends its time on SQL, not on cryptography.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from qorgau.kernel.auth.policy import can
from qorgau.kernel.context import Kernel
from qorgau.kernel.crypto import row_aad, seal, unseal
from qorgau.kernel.db import Prebuilt, Tx, utc_now_ms
from qorgau.kernel.errors import Problem
from qorgau.kernel.events import attach, emit
from qorgau.messenger import tables as t
from qorgau.messenger.domain import (
    DEFAULT_MESSAGES_LIMIT,
    MAX_TIMELINE_LIMIT,
    NOTIFYING_TYPES,
    EventFilter,
    Membership,
    check_content_size,
    check_dsp_forward,
    check_dsp_message,
    check_event_type,
    content_marked_dsp,
    forbidden,
    forwarded_from,
    invalid_param,
    new_event_id,
    not_found,
    parse_stream_token,
    redact_content,
    stream_token,
)
from qorgau.messenger.runtime import Runtime, runtime
from qorgau.messenger.services.access import (
    MxCtx,
    RoomAccess,
    note_dsp_view,
    require_official,
    require_reader,
    room_access,
)
from qorgau.messenger.services.visibility import Visibility, room_visibility, visible

TOPIC_ROOM = "messenger.room"

_encode = msgspec.json.encode
_decode = msgspec.json.decode


def content_aad(event_id: str) -> bytes:
    return row_aad(t.events.name, "content", event_id)


# --- drafting and appending -------------------------------------------------------------------


@dataclass
class Draft:
    """An event ready to append: its id is chosen and its content sealed, outside any transaction."""

    event_id: str
    room_id: str
    type: str
    sender: str
    ts: int
    content: dict[str, Any]
    blob: bytes
    state_key: str | None = None
    redacts: str | None = None
    txn_device: str | None = None
    txn_id: str | None = None
    # For m.room.member: the member's account and agency (the derived members table keeps them).
    account_id: str | None = None
    agency_id: str | None = None
    dsp: bool = False  # "For official use only": sent in a ДСП room or marked so


def draft(
    kernel: Kernel,
    room_id: str,
    event_type: str,
    sender: str,
    content: dict[str, Any],
    *,
    state_key: str | None = None,
    redacts: str | None = None,
    txn_device: str | None = None,
    txn_id: str | None = None,
    account_id: str | None = None,
    agency_id: str | None = None,
    ts: int | None = None,
) -> Draft:
    body = _encode(content)
    check_content_size(body)
    event_id = new_event_id()
    return Draft(
        event_id=event_id,
        room_id=room_id,
        type=event_type,
        sender=sender,
        ts=ts if ts is not None else utc_now_ms(),
        content=content,
        blob=seal(kernel.keyring, body, content_aad(event_id)),
        state_key=state_key,
        redacts=redacts,
        txn_device=txn_device,
        txn_id=txn_id,
        account_id=account_id,
        agency_id=agency_id,
    )


def media_refs(content: dict[str, Any], server_name: str) -> list[str]:
    """The ids of this server's media an event's content points to (file, image, thumbnail, avatar)."""
    found: list[str] = []
    prefix = f"mxc://{server_name}/"

    def take(value: Any) -> None:
        if isinstance(value, str) and value.startswith(prefix) and "/" not in value[len(prefix) :]:
            found.append(value[len(prefix) :])

    take(content.get("url"))
    for key in ("file", "info"):
        nested = content.get(key)
        if isinstance(nested, dict):
            take(nested.get("url"))
            take(nested.get("thumbnail_url"))
            thumb = nested.get("thumbnail_file")
            if isinstance(thumb, dict):
                take(thumb.get("url"))
    return list(dict.fromkeys(found))


def upsert(tx: Tx, table: sa.Table, keys: dict[str, Any], values: dict[str, Any]) -> None:
    """Update the row with `keys`, or insert it (writers are serialised, so no race in between)."""
    cond = [table.c[k] == v for k, v in keys.items()]
    if tx.execute(table.update().where(*cond).values(**values)).rowcount == 0:
        tx.execute(table.insert().values(**keys, **values))


# Every message goes through here: compiled once and run on the driver's cursor (see Prebuilt).
_INSERT_EVENT = Prebuilt(
    t.events.insert().values(
        {
            name: sa.bindparam(name)
            for name in (
                "stream_id",
                "event_id",
                "room_id",
                "type",
                "state_key",
                "sender",
                "origin_server_ts",
                "membership",
                "prev_membership",
                "redacts",
                "txn_device",
                "txn_id",
                "dsp",
                "content",
            )
        }
    )
)


def append(tx: Tx, kernel: Kernel, d: Draft) -> int:
    """Write `d` in the caller's transaction (with its state and membership effects); its stream id."""
    payload: dict[str, Any] = {"room": d.room_id}
    membership = prev_membership = None
    if d.type == "m.room.member" and d.state_key is not None:
        membership = str(d.content.get("membership", ""))
        prev_membership = tx.execute(
            sa.select(t.members.c.membership).where(
                t.members.c.room_id == d.room_id, t.members.c.user_id == d.state_key
            )
        ).scalar()
        if d.account_id:
            payload["account"] = d.account_id
    stream_id = emit(tx, TOPIC_ROOM, payload)
    _INSERT_EVENT.run(
        tx,
        {
            "stream_id": stream_id,
            "event_id": d.event_id,
            "room_id": d.room_id,
            "type": d.type,
            "state_key": d.state_key,
            "sender": d.sender,
            "origin_server_ts": d.ts,
            "membership": membership,
            "prev_membership": prev_membership,
            "redacts": d.redacts,
            "txn_device": d.txn_device,
            "txn_id": d.txn_id,
            "dsp": d.dsp,
            "content": d.blob,
        },
    )
    if d.state_key is not None:
        upsert(
            tx,
            t.room_state,
            {"room_id": d.room_id, "type": d.type, "state_key": d.state_key},
            {"event_id": d.event_id, "stream_id": stream_id},
        )
    if membership is not None:
        upsert(
            tx,
            t.members,
            {"room_id": d.room_id, "user_id": d.state_key},
            {
                "membership": membership,
                "account_id": d.account_id or "",
                "agency_id": d.agency_id,
                "event_id": d.event_id,
                "stream_id": stream_id,
            },
        )
    for media_id in media_refs(d.content, kernel.settings.server_name):
        tie = (t.media_rooms.c.media_id == media_id, t.media_rooms.c.room_id == d.room_id)
        # Writers are serialised (and ordered by the events lock on PostgreSQL): no race in between.
        known = tx.execute(sa.select(t.media.c.media_id).where(t.media.c.media_id == media_id)).first()
        if known is not None and tx.execute(sa.select(t.media_rooms.c.media_id).where(*tie)).first() is None:
            tx.execute(t.media_rooms.insert().values(media_id=media_id, room_id=d.room_id))
    # The /sync window of this process takes the event from here instead of reading it back.
    attach(
        tx,
        stream_id,
        StoredEvent(
            stream_id=stream_id,
            event_id=d.event_id,
            room_id=d.room_id,
            type=d.type,
            state_key=d.state_key,
            sender=d.sender,
            ts=d.ts,
            content=d.content,
            membership=membership,
            prev_membership=prev_membership,
            redacts=d.redacts,
            txn_device=d.txn_device,
            txn_id=d.txn_id,
        ),
    )
    contents = runtime(kernel).contents
    key, content = (d.event_id, False), d.content
    tx.after_commit(lambda: contents.put(key, content))
    return stream_id


async def run_write(kernel: Kernel, job: Any) -> Any:
    """Run `job(tx)` through the group-commit writer; a Problem it returns (before writing) is raised.

    Jobs return refusals instead of raising them, so one refused request never rolls back the
    neighbours that share its batch.
    """
    result = await kernel.writer.arun(job)
    if isinstance(result, Problem):
        raise result
    return result


# --- stored events ----------------------------------------------------------------------------


@dataclass(slots=True)
class StoredEvent:
    """A committed room event with its (cached) decrypted content."""

    stream_id: int
    event_id: str
    room_id: str
    type: str
    state_key: str | None
    sender: str
    ts: int
    content: dict[str, Any]
    membership: str | None = None
    prev_membership: str | None = None
    redacts: str | None = None
    redacted_because: dict[str, Any] | None = None
    txn_device: str | None = None
    txn_id: str | None = None
    _raw: msgspec.Raw | None = field(default=None, repr=False)

    def to_dict(self, *, with_room_id: bool = True, txn_device: str | None = None) -> dict[str, Any]:
        """The client format of the event; `transaction_id` only for the device that sent it."""
        out: dict[str, Any] = {
            "event_id": self.event_id,
            "type": self.type,
            "sender": self.sender,
            "origin_server_ts": self.ts,
            "content": self.content,
        }
        if with_room_id:
            out["room_id"] = self.room_id
        if self.state_key is not None:
            out["state_key"] = self.state_key
        if self.redacts is not None:
            out["redacts"] = self.redacts
        unsigned: dict[str, Any] = {}
        if self.redacted_because is not None:
            unsigned["redacted_because"] = self.redacted_because
        if txn_device is not None and self.txn_id is not None and txn_device == self.txn_device:
            unsigned["transaction_id"] = self.txn_id
        if unsigned:
            out["unsigned"] = unsigned
        return out

    def for_sync(self, device_key: str) -> Any:
        """The sync format, pre-encoded once and shared by every receiver (the sender's device aside)."""
        if self.txn_id is not None and device_key == self.txn_device:
            return self.to_dict(with_room_id=False, txn_device=device_key)
        raw = self._raw
        if raw is None:
            raw = self._raw = msgspec.Raw(_encode(self.to_dict(with_room_id=False)))
        return raw

    def redact(self, redaction: StoredEvent) -> None:
        self.content = redact_content(self.type, self.content)
        self.redacted_because = redaction.to_dict(with_room_id=False)
        self._raw = None


def decrypt_content(kernel: Kernel, rt: Runtime, event_id: str, redacted: bool, blob: bytes) -> dict[str, Any]:
    key = (event_id, redacted)
    content = rt.contents.get(key)
    if content is None:
        content = _decode(unseal(kernel.keyring, blob, content_aad(event_id)))
        rt.contents.put(key, content)
    return content


def events_from_rows(kernel: Kernel, conn: Connection, rows: Sequence[Any]) -> list[StoredEvent]:
    """Stored events for `rows` of messenger_events (in order), with redactions attached."""
    rt = runtime(kernel)
    out = [
        StoredEvent(
            stream_id=int(r.stream_id),
            event_id=r.event_id,
            room_id=r.room_id,
            type=r.type,
            state_key=r.state_key,
            sender=r.sender,
            ts=int(r.origin_server_ts),
            content=decrypt_content(kernel, rt, r.event_id, r.redacted_by is not None, r.content),
            membership=r.membership,
            prev_membership=r.prev_membership,
            redacts=r.redacts,
            txn_device=r.txn_device,
            txn_id=r.txn_id,
        )
        for r in rows
    ]
    redactions = {r.redacted_by for r in rows if r.redacted_by is not None}
    if redactions:
        found = {e.event_id: e for e in load_events(kernel, conn, event_ids=redactions)}
        for row, event in zip(rows, out, strict=True):
            because = found.get(row.redacted_by)
            if because is not None:
                event.redacted_because = because.to_dict(with_room_id=False)
    return out


def load_events(
    kernel: Kernel,
    conn: Connection,
    *,
    event_ids: Iterable[str] | None = None,
    stream_range: tuple[int, int] | None = None,
) -> list[StoredEvent]:
    """Events by id, or every event with a stream id in (after, upto], in stream order."""
    e = t.events
    query = sa.select(e)
    if event_ids is not None:
        query = query.where(e.c.event_id.in_(list(event_ids)))
    if stream_range is not None:
        query = query.where(e.c.stream_id > stream_range[0], e.c.stream_id <= stream_range[1])
    rows = conn.execute(query.order_by(e.c.stream_id)).all()
    return events_from_rows(kernel, conn, rows)


def room_events(
    kernel: Kernel,
    conn: Connection,
    room_id: str,
    *,
    after: int | None = None,
    upto: int | None = None,
    limit: int,
    backwards: bool,
    event_filter: EventFilter | None = None,
    visibility: Visibility | None = None,
) -> list[StoredEvent]:
    """A room's events in (after, upto], the newest first when `backwards`, at most `limit` of them.

    A filter on types or senders is applied in SQL; one on content (`contains_url`) after decrypting.
    The events `visibility` hides (history from before a member could see it) are left out in SQL.
    """
    e = t.events
    query = sa.select(e).where(e.c.room_id == room_id)
    if visibility is not None:
        query = query.where(visibility.clause(e))
    if after is not None:
        query = query.where(e.c.stream_id > after)
    if upto is not None:
        query = query.where(e.c.stream_id <= upto)
    f = event_filter
    if f is not None:
        if f.types is not None and not any("*" in p for p in f.types):
            query = query.where(e.c.type.in_(f.types))
        if f.not_types and not any("*" in p for p in f.not_types):
            query = query.where(e.c.type.not_in(f.not_types))
        if f.senders is not None:
            query = query.where(e.c.sender.in_(f.senders))
        if f.not_senders:
            query = query.where(e.c.sender.not_in(f.not_senders))
    query = query.order_by(e.c.stream_id.desc() if backwards else e.c.stream_id)
    if f is None or (f.contains_url is None and not _has_wildcards(f)):
        return events_from_rows(kernel, conn, conn.execute(query.limit(limit)).all())
    out: list[StoredEvent] = []
    for chunk in conn.execute(query).partitions(200):
        for event in events_from_rows(kernel, conn, chunk):
            if f.allows(event.type, event.sender, event.content):
                out.append(event)
                if len(out) >= limit:
                    return out
    return out


def _has_wildcards(f: EventFilter) -> bool:
    return any("*" in p for p in (*(f.types or ()), *f.not_types))


def current_state(kernel: Kernel, conn: Connection, room_id: str, upto: int | None = None) -> list[StoredEvent]:
    """The room's current state events (those committed up to `upto`, when given), in stream order."""
    e, s = t.events, t.room_state
    query = sa.select(e).join(s, s.c.event_id == e.c.event_id).where(s.c.room_id == room_id)
    if upto is not None:
        query = query.where(s.c.stream_id <= upto)
    return events_from_rows(kernel, conn, conn.execute(query.order_by(e.c.stream_id)).all())


# --- use cases ----------------------------------------------------------------------------------


async def do_send_event(ctx: MxCtx, room_id: str, event_type: str, content: dict[str, Any], txn_id: str | None) -> str:
    """Send a message-like event; returns its id once durable. Idempotent per access token and txnId."""
    require_official(ctx)
    check_event_type(event_type)
    if event_type in ("m.room.redaction", "m.room.member", "m.room.create"):
        raise invalid_param(f"{event_type} events have their own endpoints")
    kernel = ctx.kernel
    source = forwarded_from(content)
    d = draft(kernel, room_id, event_type, ctx.user_id, content, txn_device=ctx.device_key, txn_id=txn_id)

    def job(tx: Tx) -> str | Problem:
        if txn_id is not None:
            done = _sent_with_txn(tx.conn, ctx.device_key, txn_id)
            if done is not None:
                return done
        access = room_access(kernel, tx.conn, room_id, ctx.user_id, event_type=event_type)
        if access is None or not can(ctx.actor, "messenger.room.send", access):
            return forbidden("You may not send this event in this room")
        why = check_dsp_message(room_dsp=access.dsp, content=content)
        if why is None and source is not None:
            why = _dsp_forward_refusal(tx.conn, ctx, access, source)
        if why is not None:
            return forbidden(why)
        d.dsp = access.dsp or content_marked_dsp(content)
        append(tx, kernel, d)
        return d.event_id

    return str(await run_write(kernel, job))


def _dsp_forward_refusal(conn: Connection, ctx: MxCtx, target: RoomAccess, source: tuple[str, str]) -> str | None:
    """Why a forward of `source` (room id, event id) may not go to the target room; None: allowed."""
    e, r, m = t.events, t.rooms, t.members
    row = conn.execute(
        sa.select(e.c.dsp, r.c.dsp.label("room_dsp"))
        .join(r, r.c.room_id == e.c.room_id)
        .where(e.c.event_id == source[1], e.c.room_id == source[0])
    ).first()
    source_dsp = row is not None and bool(row.dsp or row.room_dsp)
    agencies = conn.execute(
        sa.select(m.c.agency_id).where(
            m.c.room_id == target.room_id, m.c.membership.in_((Membership.JOIN, Membership.INVITE))
        )
    ).scalars()
    actor = ctx.actor
    return check_dsp_forward(
        source_dsp=source_dsp,
        target_dsp=target.dsp,
        sender_agency=actor.agency_id if actor is not None else None,
        member_agencies=list(agencies),
    )


_SENT_WITH_TXN = Prebuilt(
    sa.select(t.events.c.event_id).where(
        t.events.c.txn_device == sa.bindparam("device"), t.events.c.txn_id == sa.bindparam("txn")
    )
)


def _sent_with_txn(conn: Connection, device_key: str, txn_id: str) -> str | None:
    found = _SENT_WITH_TXN.scalar(conn, {"device": device_key, "txn": txn_id})
    return str(found) if found is not None else None


async def do_redact_event(ctx: MxCtx, room_id: str, target_id: str, reason: str | None, txn_id: str | None) -> str:
    """Redact an event: its content is replaced at rest by what the room version keeps."""
    require_official(ctx)
    kernel = ctx.kernel

    def prepare() -> tuple[StoredEvent | None, bytes | None]:
        with kernel.db.read() as conn:
            if txn_id is not None and _sent_with_txn(conn, ctx.device_key, txn_id) is not None:
                return None, None
            require_reader(ctx, conn, room_id)
            found = load_events(kernel, conn, event_ids=[target_id])
        if not found or found[0].room_id != room_id:
            raise not_found("Unknown event")
        target = found[0]
        if target.type == "m.room.create":
            raise forbidden("The creation event of a room cannot be redacted")
        pruned = redact_content(target.type, target.content)
        return target, seal(kernel.keyring, _encode(pruned), content_aad(target_id))

    target, pruned_blob = await asyncio.to_thread(prepare)
    content: dict[str, Any] = {"redacts": target_id}
    if reason:
        content["reason"] = reason
    d = draft(
        kernel,
        room_id,
        "m.room.redaction",
        ctx.user_id,
        content,
        redacts=target_id,
        txn_device=ctx.device_key,
        txn_id=txn_id,
    )

    def job(tx: Tx) -> str | Problem:
        if txn_id is not None:
            done = _sent_with_txn(tx.conn, ctx.device_key, txn_id)
            if done is not None:
                return done
        if target is None:
            return not_found("Unknown event")
        access = room_access(kernel, tx.conn, room_id, ctx.user_id)
        if access is None or not can(ctx.actor, "messenger.room.redact", (access, target.sender)):
            return forbidden("You may not redact this event")
        append(tx, kernel, d)
        tx.execute(
            t.events.update()
            .where(t.events.c.event_id == target_id, t.events.c.redacted_by.is_(None))
            .values(content=pruned_blob, redacted_by=d.event_id)
        )
        return d.event_id

    return str(await run_write(kernel, job))


def get_event(ctx: MxCtx, room_id: str, event_id: str) -> dict[str, Any]:
    """One event of a room the actor reads; M_NOT_FOUND also when its history is hidden from them."""
    require_official(ctx)
    with ctx.kernel.db.read() as conn:
        access = require_reader(ctx, conn, room_id)
        found = load_events(ctx.kernel, conn, event_ids=[event_id])
        visibility = room_visibility(ctx.kernel, conn, room_id, ctx.user_id) if found else None
    if not found or found[0].room_id != room_id or not visible(visibility, found[0]):
        raise not_found("Event not found")
    note_dsp_view(ctx, access, 1)
    return found[0].to_dict(txn_device=ctx.device_key)


def _position(token: str | None, name: str) -> int | None:
    return parse_stream_token(token, name) if token else None


def room_messages(
    ctx: MxCtx,
    room_id: str,
    *,
    from_token: str | None,
    to_token: str | None,
    direction: str,
    limit: int | None,
    event_filter: EventFilter,
) -> dict[str, Any]:
    """One page of a room's history from a token, backwards (`b`) or forwards (`f`)."""
    require_official(ctx)
    if direction not in ("b", "f"):
        raise invalid_param("'dir' must be 'b' or 'f'")
    limit = DEFAULT_MESSAGES_LIMIT if limit is None else max(0, min(limit, MAX_TIMELINE_LIMIT))
    if event_filter.limit is not None:
        limit = min(limit, event_filter.limit)
    start = _position(from_token, "from")
    end_bound = _position(to_token, "to")
    backwards = direction == "b"
    with ctx.kernel.db.read() as conn:
        access = require_reader(ctx, conn, room_id)
        visibility = room_visibility(ctx.kernel, conn, room_id, ctx.user_id)
        if backwards:
            chunk = room_events(
                ctx.kernel,
                conn,
                room_id,
                upto=start,
                after=end_bound,
                limit=limit,
                backwards=True,
                event_filter=event_filter,
                visibility=visibility,
            )
        else:
            chunk = room_events(
                ctx.kernel,
                conn,
                room_id,
                after=start if start is not None else 0,
                upto=end_bound,
                limit=limit,
                backwards=False,
                event_filter=event_filter,
                visibility=visibility,
            )
        if start is None:
            start = _latest_room_position(conn, room_id) if backwards else 0
    if chunk:
        note_dsp_view(ctx, access, len(chunk))
    out: dict[str, Any] = {
        "chunk": [e.to_dict(txn_device=ctx.device_key) for e in chunk],
        "start": stream_token(start),
    }
    if chunk and len(chunk) >= limit:
        out["end"] = stream_token(chunk[-1].stream_id - 1 if backwards else chunk[-1].stream_id)
    return out


def _latest_room_position(conn: Connection, room_id: str) -> int:
    e = t.events
    return int(conn.execute(sa.select(sa.func.max(e.c.stream_id)).where(e.c.room_id == room_id)).scalar() or 0)


def event_context(ctx: MxCtx, room_id: str, event_id: str, limit: int, event_filter: EventFilter) -> dict[str, Any]:
    """An event with up to `limit` events around it (half before, half after) and the room's state."""
    require_official(ctx)
    limit = max(0, min(limit, MAX_TIMELINE_LIMIT))
    kernel = ctx.kernel
    with kernel.db.read() as conn:
        access = require_reader(ctx, conn, room_id)
        found = load_events(kernel, conn, event_ids=[event_id])
        visibility = room_visibility(kernel, conn, room_id, ctx.user_id) if found else None
        if not found or found[0].room_id != room_id or not visible(visibility, found[0]):
            raise not_found("Event not found")
        event = found[0]
        before_n = limit // 2
        after_n = limit - before_n
        around: dict[str, Any] = {"event_filter": event_filter, "visibility": visibility}
        before = room_events(kernel, conn, room_id, upto=event.stream_id - 1, limit=before_n, backwards=True, **around)
        after = room_events(kernel, conn, room_id, after=event.stream_id, limit=after_n, backwards=False, **around)
        state = current_state(kernel, conn, room_id)
    note_dsp_view(ctx, access, 1 + len(before) + len(after))
    start = (before[-1].stream_id - 1) if before else event.stream_id - 1
    end = after[-1].stream_id if after else event.stream_id
    dev = ctx.device_key
    return {
        "event": event.to_dict(txn_device=dev),
        "events_before": [e.to_dict(txn_device=dev) for e in before],
        "events_after": [e.to_dict(txn_device=dev) for e in after],
        "state": [e.to_dict() for e in state],
        "start": stream_token(start),
        "end": stream_token(end),
    }


READ_RECEIPTS = ("m.read", "m.read.private")


def count_unread(
    conn: Connection,
    room_id: str,
    mxid: str,
    *,
    cap: int,
    upto: int | None = None,
    visibility: Visibility | None = None,
) -> int:
    """Messages by others after the user's read receipt and their own last message, up to `cap`.

    Redacted messages do not count, nor those `visibility` hides. `upto` bounds the count to a sync
    position (None: everything).
    """
    e, rc = t.events, t.receipts
    bound = [e.c.stream_id <= upto] if upto is not None else []
    if visibility is not None:
        bound.append(visibility.clause(e))
    read_upto = conn.execute(
        sa.select(sa.func.max(rc.c.event_stream_id)).where(
            rc.c.room_id == room_id, rc.c.user_id == mxid, rc.c.receipt_type.in_(READ_RECEIPTS)
        )
    ).scalar()
    own = conn.execute(
        sa.select(sa.func.max(e.c.stream_id)).where(
            e.c.room_id == room_id, e.c.sender == mxid, e.c.type.in_(NOTIFYING_TYPES), *bound
        )
    ).scalar()
    base = max(int(read_upto or 0), int(own or 0))
    inner = (
        sa.select(e.c.stream_id)
        .where(
            e.c.room_id == room_id,
            e.c.stream_id > base,
            e.c.sender != mxid,
            e.c.type.in_(NOTIFYING_TYPES),
            e.c.redacted_by.is_(None),
            *bound,
        )
        .limit(cap)
        .subquery()
    )
    return int(conn.execute(sa.select(sa.func.count()).select_from(inner)).scalar() or 0)
