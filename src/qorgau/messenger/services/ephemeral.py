"""Read receipts, read markers, typing notifications and per-user account data.

Each change emits a kernel event (topic `messenger.receipt`, `messenger.typing`,
`messenger.account_data`) so /sync waiters wake and resume from the same stream as room events.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import sqlalchemy as sa

from qorgau.kernel.auth.policy import can
from qorgau.kernel.context import Kernel
from qorgau.kernel.crypto import row_aad, seal, unseal
from qorgau.kernel.db import Tx, utc_now_ms
from qorgau.kernel.errors import Problem
from qorgau.kernel.events import emit
from qorgau.messenger import tables as t
from qorgau.messenger.domain import (
    DEFAULT_TYPING_MS,
    MAX_TYPING_MS,
    check_content_size,
    check_event_type,
    forbidden,
    invalid_param,
    mx_error,
    not_found,
)
from qorgau.messenger.services.access import MxCtx, require_official, require_own, room_access
from qorgau.messenger.services.events import run_write, upsert

TOPIC_RECEIPT = "messenger.receipt"
TOPIC_TYPING = "messenger.typing"
TOPIC_ACCOUNT_DATA = "messenger.account_data"
RECEIPT_TYPES = ("m.read", "m.read.private")
SERVER_OWNED_ACCOUNT_DATA = ("m.fully_read", "m.push_rules")


def _member_refusal(kernel: Kernel, tx: Tx, ctx: MxCtx, room_id: str) -> Problem | None:
    access = room_access(kernel, tx.conn, room_id, ctx.user_id)
    if access is None or not can(ctx.actor, "messenger.room.read", access):
        return forbidden("You are not a member of this room")
    return None


def _receipt_tx(
    tx: Tx, kernel: Kernel, ctx: MxCtx, room_id: str, receipt_type: str, event_id: str, thread_id: str
) -> Problem | None:
    e, r = t.events, t.receipts
    target = tx.execute(sa.select(e.c.stream_id, e.c.room_id).where(e.c.event_id == event_id)).first()
    if target is None or target.room_id != room_id:
        return not_found("Unknown event")
    keys = {"room_id": room_id, "user_id": ctx.user_id, "receipt_type": receipt_type, "thread_id": thread_id}
    current = tx.execute(sa.select(r.c.event_stream_id).where(*[r.c[k] == v for k, v in keys.items()])).scalar()
    if current is not None and current >= target.stream_id:
        return None  # receipts only move forward
    stream_id = emit(tx, TOPIC_RECEIPT, {"room": room_id})
    upsert(
        tx,
        r,
        keys,
        {"event_id": event_id, "event_stream_id": target.stream_id, "ts": utc_now_ms(), "stream_id": stream_id},
    )
    return None


async def do_set_receipt(
    ctx: MxCtx, room_id: str, receipt_type: str, event_id: str, thread_id: str | None = None
) -> None:
    """Mark `event_id` read (m.read, m.read.private) or fully read (m.fully_read)."""
    require_official(ctx)
    kernel = ctx.kernel
    if receipt_type == "m.fully_read":
        await do_set_read_markers(ctx, room_id, fully_read=event_id)
        return
    if receipt_type not in RECEIPT_TYPES:
        raise invalid_param(f"unknown receipt type {receipt_type!r}")
    if thread_id is not None and (not isinstance(thread_id, str) or not thread_id or len(thread_id) > 255):
        raise invalid_param("invalid thread_id")

    def job(tx: Tx) -> Problem | None:
        return _member_refusal(kernel, tx, ctx, room_id) or _receipt_tx(
            tx, kernel, ctx, room_id, receipt_type, event_id, thread_id or ""
        )

    await run_write(kernel, job)


async def do_set_read_markers(
    ctx: MxCtx,
    room_id: str,
    *,
    fully_read: str | None = None,
    read: str | None = None,
    read_private: str | None = None,
) -> None:
    """POST /read_markers: the fully-read marker (room account data) and read receipts at once."""
    require_official(ctx)
    kernel = ctx.kernel
    marker = _sealed_account_data(kernel, ctx.user_id, room_id, "m.fully_read", {"event_id": fully_read})

    def job(tx: Tx) -> Problem | None:
        refused = _member_refusal(kernel, tx, ctx, room_id)
        if refused is not None:
            return refused
        for event_id in (fully_read, read, read_private):
            if event_id is not None:
                found = tx.execute(sa.select(t.events.c.room_id).where(t.events.c.event_id == event_id)).scalar()
                if found != room_id:
                    return not_found("Unknown event")
        if read is not None:
            _receipt_tx(tx, kernel, ctx, room_id, "m.read", read, "")
        if read_private is not None:
            _receipt_tx(tx, kernel, ctx, room_id, "m.read.private", read_private, "")
        if fully_read is not None:
            _write_account_data(tx, ctx, marker)
        return None

    await run_write(kernel, job)


async def do_set_typing(ctx: MxCtx, room_id: str, target: str, typing: bool, timeout_ms: int | None) -> None:
    """Start (for at most two minutes) or stop typing in a room."""
    require_official(ctx)
    require_own(ctx, target, "typing notifications")
    kernel = ctx.kernel
    timeout = min(max(timeout_ms or DEFAULT_TYPING_MS, 0), MAX_TYPING_MS)
    expires_at = utc_now_ms() + timeout
    ty = t.typing
    keys = {"room_id": room_id, "user_id": ctx.user_id}

    def job(tx: Tx) -> Problem | None:
        refused = _member_refusal(kernel, tx, ctx, room_id)
        if refused is not None:
            return refused
        if typing:
            stream_id = emit(tx, TOPIC_TYPING, {"room": room_id})
            upsert(tx, ty, keys, {"expires_at": expires_at, "stream_id": stream_id})
        else:
            _stop_typing(tx, room_id, ctx.user_id, None)
        return None

    await run_write(kernel, job)
    if typing:
        # Nobody announces that a timeout ran out: this process does, if the row is still the same.
        asyncio.get_running_loop().call_later(
            timeout / 1000 + 0.05,
            lambda: kernel.writer.submit(lambda tx: _stop_typing(tx, room_id, ctx.user_id, expires_at)),
        )


def _stop_typing(tx: Tx, room_id: str, user: str, expired_at: int | None) -> None:
    ty = t.typing
    cond = [ty.c.room_id == room_id, ty.c.user_id == user]
    if expired_at is not None:
        cond.append(ty.c.expires_at <= expired_at)
    if tx.execute(sa.select(ty.c.room_id).where(*cond)).first() is None:
        return
    emit(tx, TOPIC_TYPING, {"room": room_id})
    tx.execute(ty.delete().where(*cond))


# --- account data -----------------------------------------------------------------------------


def _account_data_id(kernel: Kernel, mxid: str, room_id: str, data_type: str) -> str:
    # A stable id per (user, room, type): the content can be sealed before the write transaction.
    return kernel.hasher.hash("messenger.account_data", f"{mxid}\x00{room_id}\x00{data_type}")[:32]


def _sealed_account_data(
    kernel: Kernel, mxid: str, room_id: str, data_type: str, content: dict[str, Any]
) -> dict[str, Any]:
    body = msgspec.json.encode(content)
    check_content_size(body)
    row_id = _account_data_id(kernel, mxid, room_id, data_type)
    return {
        "id": row_id,
        "user_id": mxid,
        "room_id": room_id,
        "type": data_type,
        "content": seal(kernel.keyring, body, row_aad(t.account_data.name, "content", row_id)),
    }


def _write_account_data(tx: Tx, ctx: MxCtx, row: dict[str, Any]) -> None:
    assert ctx.actor is not None
    stream_id = emit(tx, TOPIC_ACCOUNT_DATA, {"account": ctx.actor.user_id})
    upsert(
        tx, t.account_data, {"id": row["id"]}, {**{k: v for k, v in row.items() if k != "id"}, "stream_id": stream_id}
    )


async def do_set_account_data(
    ctx: MxCtx, target: str, room_id: str | None, data_type: str, content: dict[str, Any]
) -> None:
    """Store the user's own (global or per-room) account data."""
    require_official(ctx)
    require_own(ctx, target, "account data")
    check_event_type(data_type)
    if data_type in SERVER_OWNED_ACCOUNT_DATA:
        raise mx_error("M_BAD_JSON", f"{data_type} is managed by the server", 405)
    kernel = ctx.kernel
    row = _sealed_account_data(kernel, ctx.user_id, room_id or "", data_type, content)

    def job(tx: Tx) -> Problem | None:
        if room_id is not None:
            refused = _member_refusal(kernel, tx, ctx, room_id)
            if refused is not None:
                return refused
        _write_account_data(tx, ctx, row)
        return None

    await run_write(kernel, job)


def get_account_data(ctx: MxCtx, target: str, room_id: str | None, data_type: str) -> dict[str, Any]:
    require_official(ctx)
    require_own(ctx, target, "account data")
    kernel = ctx.kernel
    row_id = _account_data_id(kernel, ctx.user_id, room_id or "", data_type)
    with kernel.db.read() as conn:
        blob = conn.execute(sa.select(t.account_data.c.content).where(t.account_data.c.id == row_id)).scalar()
    if blob is None:
        raise not_found("No account data of this type")
    return msgspec.json.decode(unseal(kernel.keyring, blob, row_aad(t.account_data.name, "content", row_id)))  # type: ignore[no-any-return]


def account_data_rows(kernel: Kernel, conn: Any, mxid: str, after: int | None, upto: int) -> list[tuple[str, str, Any]]:
    """(room_id or "", type, content) of the user's account data changed in (after, upto]."""
    a = t.account_data
    query = sa.select(a.c.id, a.c.room_id, a.c.type, a.c.content).where(a.c.user_id == mxid, a.c.stream_id <= upto)
    if after is not None:
        query = query.where(a.c.stream_id > after)
    out = []
    for row in conn.execute(query.order_by(a.c.stream_id)).all():
        content = msgspec.json.decode(unseal(kernel.keyring, row.content, row_aad(a.name, "content", row.id)))
        out.append((row.room_id, row.type, content))
    return out
