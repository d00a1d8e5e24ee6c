"""End-to-end encryption support: device keys, one-time keys, key claims, to-device messages.

The server stores and relays what clients sign and encrypt; it never holds a private key and never
sees the plaintext of an encrypted room (m.room.encrypted content is stored as sent).
"""

from __future__ import annotations

import secrets
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from qorgau.kernel.context import Kernel
from qorgau.kernel.crypto import row_aad, seal, unseal
from qorgau.kernel.db import Tx
from qorgau.kernel.errors import Problem
from qorgau.kernel.events import emit
from qorgau.messenger import tables as t
from qorgau.messenger.domain import (
    Membership,
    bad_json,
    check_content_size,
    check_event_type,
    invalid_param,
    parse_stream_token,
)
from qorgau.messenger.services.access import MxCtx, require_official
from qorgau.messenger.services.accounts import lookup_users, note_device_list_change
from qorgau.messenger.services.events import run_write

TOPIC_TO_DEVICE = "messenger.to_device"
TOPIC_KEYS_CLAIMED = "messenger.keys_claimed"
MAX_ONE_TIME_KEYS = 100

_encode = msgspec.json.encode
_decode = msgspec.json.decode


async def do_upload_keys(ctx: MxCtx, body: dict[str, Any]) -> dict[str, Any]:
    """Store the device's identity keys and one-time/fallback keys; returns the one-time key counts."""
    require_official(ctx)
    kernel = ctx.kernel
    actor = ctx.actor
    assert actor is not None
    device_keys = body.get("device_keys")
    if device_keys is not None:
        if not isinstance(device_keys, dict):
            raise bad_json("'device_keys' must be an object")
        if device_keys.get("user_id") != ctx.user_id or device_keys.get("device_id") != ctx.device_id:
            raise invalid_param("device_keys must name this user and device")
    one_time = _keys_map(body.get("one_time_keys"), "one_time_keys")
    fallback = _keys_map(body.get("fallback_keys"), "fallback_keys")
    if len(one_time) > MAX_ONE_TIME_KEYS:
        raise invalid_param(f"at most {MAX_ONE_TIME_KEYS} one-time keys per upload")
    dk = t.device_keys

    def job(tx: Tx) -> dict[str, Any]:
        who = {"user_id": ctx.user_id, "device_id": ctx.device_id}
        if device_keys is not None:
            text = _encode(device_keys).decode()
            old = tx.execute(
                sa.select(dk.c.keys_json).where(dk.c.user_id == ctx.user_id, dk.c.device_id == ctx.device_id)
            ).scalar()
            if old != text:
                stream_id = note_device_list_change(tx, actor.user_id, ctx.user_id)
                if old is None:
                    tx.execute(dk.insert().values(**who, keys_json=text, stream_id=stream_id))
                else:
                    tx.execute(
                        dk.update()
                        .where(dk.c.user_id == ctx.user_id, dk.c.device_id == ctx.device_id)
                        .values(keys_json=text, stream_id=stream_id)
                    )
        otk = t.one_time_keys
        for key_id, key in one_time.items():
            exists = tx.execute(
                sa.select(otk.c.key_id).where(
                    otk.c.user_id == ctx.user_id, otk.c.device_id == ctx.device_id, otk.c.key_id == key_id
                )
            ).first()
            if exists is None:
                tx.execute(
                    otk.insert().values(
                        **who, key_id=key_id, algorithm=key_id.split(":", 1)[0], key_json=_encode(key).decode()
                    )
                )
        fb = t.fallback_keys
        for key_id, key in fallback.items():
            algorithm = key_id.split(":", 1)[0]
            tx.execute(
                fb.delete().where(
                    fb.c.user_id == ctx.user_id, fb.c.device_id == ctx.device_id, fb.c.algorithm == algorithm
                )
            )
            tx.execute(fb.insert().values(**who, algorithm=algorithm, key_id=key_id, key_json=_encode(key).decode()))
        return one_time_key_counts(tx.conn, ctx.user_id, ctx.device_id)

    return await run_write(kernel, job)  # type: ignore[no-any-return]


def _keys_map(raw: Any, name: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) and ":" in k and len(k) <= 255 for k in raw):
        raise bad_json(f"'{name}' must map 'algorithm:key_id' to keys")
    return raw


def one_time_key_counts(conn: Connection, mxid: str, device_id: str) -> dict[str, int]:
    otk = t.one_time_keys
    rows = conn.execute(
        sa.select(otk.c.algorithm, sa.func.count())
        .where(otk.c.user_id == mxid, otk.c.device_id == device_id)
        .group_by(otk.c.algorithm)
    ).all()
    counts = {"signed_curve25519": 0}
    counts.update({alg: int(n) for alg, n in rows})
    return counts


def unused_fallback_key_types(conn: Connection, mxid: str, device_id: str) -> list[str]:
    fb = t.fallback_keys
    return list(
        conn.execute(
            sa.select(fb.c.algorithm).where(fb.c.user_id == mxid, fb.c.device_id == device_id, fb.c.used == sa.false())
        ).scalars()
    )


def query_keys(ctx: MxCtx, body: dict[str, Any]) -> dict[str, Any]:
    """The identity keys of the requested users' devices (every device for an empty list)."""
    require_official(ctx)
    wanted = body.get("device_keys")
    if not isinstance(wanted, dict):
        raise bad_json("'device_keys' must be an object")
    dk, d = t.device_keys, t.devices
    out: dict[str, dict[str, Any]] = {}
    with ctx.kernel.db.read() as conn:
        known = lookup_users(ctx.kernel, conn, list(wanted))
        for mxid, device_list in wanted.items():
            if mxid not in known or not known[mxid].is_official:
                continue
            query = (
                sa.select(dk.c.device_id, dk.c.keys_json, d.c.display_name)
                .select_from(dk.outerjoin(d, sa.and_(d.c.user_id == dk.c.user_id, d.c.device_id == dk.c.device_id)))
                .where(dk.c.user_id == mxid)
            )
            if isinstance(device_list, list) and device_list:
                query = query.where(dk.c.device_id.in_([str(x) for x in device_list]))
            devices: dict[str, Any] = {}
            for row in conn.execute(query).all():
                keys = _decode(row.keys_json)
                if row.display_name:
                    keys.setdefault("unsigned", {})["device_display_name"] = row.display_name
                devices[row.device_id] = keys
            out[mxid] = devices
    return {"device_keys": out, "failures": {}}


async def do_claim_keys(ctx: MxCtx, body: dict[str, Any]) -> dict[str, Any]:
    """Hand out (and delete) one one-time key per requested device, or its fallback key."""
    require_official(ctx)
    wanted = body.get("one_time_keys")
    if not isinstance(wanted, dict) or not all(isinstance(v, dict) for v in wanted.values()):
        raise bad_json("'one_time_keys' must map users to {device: algorithm}")
    otk, fb = t.one_time_keys, t.fallback_keys

    def job(tx: Tx) -> dict[str, Any]:
        out: dict[str, dict[str, Any]] = {}
        owners: dict[str, str] = {}
        for mxid, devices in wanted.items():
            for device_id, algorithm in devices.items():
                row = tx.execute(
                    sa.select(otk.c.key_id, otk.c.key_json)
                    .where(otk.c.user_id == mxid, otk.c.device_id == device_id, otk.c.algorithm == str(algorithm))
                    .order_by(otk.c.key_id)
                    .limit(1)
                ).first()
                if row is not None:
                    tx.execute(
                        otk.delete().where(
                            otk.c.user_id == mxid, otk.c.device_id == device_id, otk.c.key_id == row.key_id
                        )
                    )
                else:
                    row = tx.execute(
                        sa.select(fb.c.key_id, fb.c.key_json).where(
                            fb.c.user_id == mxid, fb.c.device_id == device_id, fb.c.algorithm == str(algorithm)
                        )
                    ).first()
                    if row is None:
                        continue
                    tx.execute(
                        fb.update()
                        .where(fb.c.user_id == mxid, fb.c.device_id == device_id, fb.c.algorithm == str(algorithm))
                        .values(used=True)
                    )
                out.setdefault(mxid, {}).setdefault(device_id, {})[row.key_id] = _decode(row.key_json)
                owners[mxid] = device_id
        if owners:
            accounts = {u.user_id: u.account_id for u in lookup_users(ctx.kernel, tx.conn, list(owners)).values()}
            for mxid in owners:
                if mxid in accounts:
                    emit(tx, TOPIC_KEYS_CLAIMED, {"account": accounts[mxid]})
        return {"one_time_keys": out, "failures": {}}

    return await run_write(ctx.kernel, job)  # type: ignore[no-any-return]


def key_changes(ctx: MxCtx, from_token: str, to_token: str) -> dict[str, Any]:
    """Users sharing a room with the actor whose device lists changed between two sync tokens."""
    require_official(ctx)
    after = parse_stream_token(from_token, "from")
    upto = parse_stream_token(to_token, "to")
    with ctx.kernel.db.read() as conn:
        changed = changed_device_lists(conn, ctx.user_id, after, upto)
    return {"changed": changed, "left": []}


def changed_device_lists(conn: Connection, mxid: str, after: int, upto: int) -> list[str]:
    kc, m = t.key_changes, t.members
    mine = sa.select(m.c.room_id).where(m.c.user_id == mxid, m.c.membership == Membership.JOIN)
    sharing = sa.select(m.c.user_id).where(m.c.room_id.in_(mine), m.c.membership == Membership.JOIN)
    rows = conn.execute(
        sa.select(kc.c.user_id)
        .where(kc.c.stream_id > after, kc.c.stream_id <= upto, sa.or_(kc.c.user_id.in_(sharing), kc.c.user_id == mxid))
        .distinct()
    ).scalars()
    return sorted(rows)


async def do_send_to_device(ctx: MxCtx, event_type: str, txn_id: str, messages: Any) -> None:
    """Queue to-device messages (sealed at rest) for the named devices; idempotent per token and txnId."""
    require_official(ctx)
    check_event_type(event_type)
    if not isinstance(messages, dict) or not all(isinstance(v, dict) for v in messages.values()):
        raise bad_json("'messages' must map users to {device: content}")
    kernel = ctx.kernel
    td = t.to_device
    queued: list[dict[str, Any]] = []
    for mxid, per_device in messages.items():
        for device_id, content in per_device.items():
            if not isinstance(content, dict):
                raise bad_json("to-device content must be an object")
            body = _encode(content)
            check_content_size(body)
            queued.append({"user_id": mxid, "device_id": str(device_id), "body": body})

    def job(tx: Tx) -> Problem | None:
        done = tx.execute(
            sa.select(td.c.id).where(td.c.txn_device == ctx.device_key, td.c.txn_id == txn_id).limit(1)
        ).first()
        if done is not None:
            return None
        users = lookup_users(kernel, tx.conn, list(messages))
        for item in queued:
            user = users.get(item["user_id"])
            if user is None or not user.is_official:
                continue
            if item["device_id"] == "*":
                targets = list(
                    tx.execute(sa.select(t.devices.c.device_id).where(t.devices.c.user_id == item["user_id"])).scalars()
                )
            else:
                targets = [item["device_id"]]
            for device_id in targets:
                stream_id = emit(tx, TOPIC_TO_DEVICE, {"account": user.account_id})
                row_id = secrets.token_hex(16)
                tx.execute(
                    td.insert().values(
                        id=row_id,
                        stream_id=stream_id,
                        user_id=item["user_id"],
                        device_id=device_id,
                        sender=ctx.user_id,
                        type=event_type,
                        txn_device=ctx.device_key,
                        txn_id=txn_id,
                        content=seal(kernel.keyring, item["body"], row_aad(td.name, "content", row_id)),
                    )
                )
        return None

    await run_write(kernel, job)


def to_device_inbox(
    kernel: Kernel, conn: Connection, mxid: str, device_id: str, after: int | None, upto: int, limit: int = 100
) -> tuple[list[dict[str, Any]], int]:
    """The device's to-device messages in (after, upto] (at most `limit`) and the position they reach."""
    td = t.to_device
    query = sa.select(td).where(td.c.user_id == mxid, td.c.device_id == device_id, td.c.stream_id <= upto)
    if after is not None:
        query = query.where(td.c.stream_id > after)
    rows = conn.execute(query.order_by(td.c.stream_id).limit(limit)).all()
    events = [
        {
            "sender": r.sender,
            "type": r.type,
            "content": _decode(unseal(kernel.keyring, r.content, row_aad(td.name, "content", r.id))),
        }
        for r in rows
    ]
    reached = int(rows[-1].stream_id) if len(rows) == limit else upto
    return events, reached


def delete_delivered(tx: Tx, mxid: str, device_id: str, upto: int) -> None:
    """Forget to-device messages the device has acknowledged (by syncing from a later token)."""
    td = t.to_device
    tx.execute(td.delete().where(td.c.user_id == mxid, td.c.device_id == device_id, td.c.stream_id <= upto))
