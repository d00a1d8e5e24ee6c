"""Who may do what in the messenger: the policy rules, and the facts they decide on.

Every rule is registered with the kernel's policy (`messenger.*` actions), so the Matrix API and the
later web pages ask the same question the same way. The facts (membership, power levels) are read in
the caller's transaction, so a decision and the write it allows see the same state.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from qorgau.kernel.auth.policy import can, rule
from qorgau.kernel.auth.roles import Actor
from qorgau.kernel.context import Ctx, Kernel
from qorgau.kernel.crypto import row_aad, unseal
from qorgau.kernel.db import Prebuilt
from qorgau.messenger import tables as t
from qorgau.messenger.domain import (
    MESSENGER_ROLES,
    Membership,
    PowerLevels,
    check_membership_change,
    dsp_view_is_ledgered,
    forbidden,
    user_id,
)
from qorgau.messenger.runtime import runtime


@dataclass
class MxCtx(Ctx):
    """A request through the Matrix API: the actor plus the signed-in device."""

    user_id: str = ""  # the Matrix user id, @username:server
    device_id: str = ""
    device_key: str = ""  # messenger_devices.id: identifies the access token (txnId scope)


def mx_ctx(kernel: Kernel, actor: Actor, *, device_id: str = "", device_key: str = "") -> MxCtx:
    return MxCtx(
        kernel=kernel,
        actor=actor,
        user_id=user_id(actor.username, kernel.settings.server_name),
        device_id=device_id,
        device_key=device_key,
    )


@dataclass(frozen=True)
class RoomAccess:
    """What decides an action in a room: the room's join rule, the actor's membership, power levels."""

    room_id: str
    user_id: str
    membership: str | None
    join_rule: str
    power: PowerLevels
    encrypted: bool = False
    event_type: str = ""
    is_state: bool = False
    dsp: bool = False  # the room is marked "For official use only"
    agency_id: str | None = None  # the creating official's agency


@dataclass(frozen=True)
class MembershipChange:
    access: RoomAccess
    action: str
    target: str
    target_membership: str | None


def _is_official(actor: Actor | None) -> bool:
    return actor is not None and actor.role in MESSENGER_ROLES


rule("messenger.use")(lambda actor, _res: _is_official(actor))


@rule("messenger.room.read")
def _read_room(actor: Actor | None, res: Any) -> bool:
    return _is_official(actor) and isinstance(res, RoomAccess) and res.membership == Membership.JOIN


@rule("messenger.room.send")
def _send(actor: Actor | None, res: Any) -> bool:
    if not (_is_official(actor) and isinstance(res, RoomAccess) and res.membership == Membership.JOIN):
        return False
    return res.power.may_send(res.user_id, res.event_type, is_state=res.is_state)


@rule("messenger.room.membership")
def _membership(actor: Actor | None, res: Any) -> bool:
    return _is_official(actor) and isinstance(res, MembershipChange) and membership_refusal(res) is None


@rule("messenger.room.redact")
def _redact(actor: Actor | None, res: Any) -> bool:
    """Members redact their own events; others' need the room's `redact` level."""
    if not isinstance(res, tuple) or len(res) != 2:
        return False
    access, original_sender = res
    if not _is_official(actor) or access.membership != Membership.JOIN:
        return False
    if not access.power.may_send(access.user_id, "m.room.redaction", is_state=False):
        return False
    return original_sender == access.user_id or access.power.may(access.user_id, "redact")


@rule("messenger.account.own")
def _own(actor: Actor | None, res: Any) -> bool:
    """Account data, filters, profile changes: only for one's own Matrix user id."""
    return _is_official(actor) and isinstance(res, tuple) and len(res) == 2 and res[0] == res[1]


@rule("messenger.register")
def _register(_actor: Actor | None, res: Any) -> bool:
    return res is True


def membership_refusal(change: MembershipChange) -> str | None:
    a = change.access
    return check_membership_change(
        action=change.action,
        sender=a.user_id,
        target=change.target,
        sender_membership=a.membership,
        target_membership=change.target_membership,
        join_rule=a.join_rule,
        power=a.power,
    )


def require_official(ctx: Ctx) -> Actor:
    if not can(ctx.actor, "messenger.use"):
        raise forbidden("Only officials of an agency may use the messenger")
    return ctx.actor  # type: ignore[return-value]


def require_own(ctx: MxCtx, target_user: str, what: str) -> None:
    if not can(ctx.actor, "messenger.account.own", (ctx.user_id, target_user)):
        raise forbidden(f"You may only change your own {what}")


# --- facts --------------------------------------------------------------------------------------


def power_levels(kernel: Kernel, conn: Connection, event_id: str | None) -> PowerLevels:
    """The levels of an m.room.power_levels event (cached by event id: its levels never change)."""
    if event_id is None:
        return PowerLevels({})
    rt = runtime(kernel)
    found = rt.power_levels.get(event_id)
    if found is not None:
        return found  # type: ignore[no-any-return]
    blob = conn.execute(sa.select(t.events.c.content).where(t.events.c.event_id == event_id)).scalar()
    content = json.loads(unseal(kernel.keyring, blob, row_aad(t.events.name, "content", event_id))) if blob else {}
    levels = PowerLevels(content)
    rt.power_levels.put(event_id, levels)
    return levels


_PL = t.room_state.alias("pl")
# On every message's path: compiled once and run on the driver's cursor (see Prebuilt).
_ROOM_ACCESS = Prebuilt(
    sa.select(
        t.rooms.c.join_rule,
        t.rooms.c.encrypted,
        t.rooms.c.dsp,
        t.rooms.c.agency_id,
        t.members.c.membership,
        _PL.c.event_id.label("pl_event"),
    )
    .select_from(
        t.rooms.outerjoin(
            t.members,
            sa.and_(t.members.c.room_id == t.rooms.c.room_id, t.members.c.user_id == sa.bindparam("mxid")),
        ).outerjoin(
            _PL,
            sa.and_(_PL.c.room_id == t.rooms.c.room_id, _PL.c.type == "m.room.power_levels", _PL.c.state_key == ""),
        )
    )
    .where(t.rooms.c.room_id == sa.bindparam("room_id"))
)


def room_access(
    kernel: Kernel, conn: Connection, room_id: str, mxid: str, *, event_type: str = "", is_state: bool = False
) -> RoomAccess | None:
    """The facts about `mxid` in `room_id` (None: no such room), read on `conn`."""
    row = _ROOM_ACCESS.first(conn, {"mxid": mxid, "room_id": room_id})
    if row is None:
        return None
    join_rule, encrypted, dsp, agency_id, membership, pl_event = row
    return RoomAccess(
        room_id=room_id,
        user_id=mxid,
        membership=membership,
        join_rule=join_rule,
        power=power_levels(kernel, conn, pl_event),
        encrypted=bool(encrypted),
        event_type=event_type,
        is_state=is_state,
        dsp=bool(dsp),
        agency_id=agency_id,
    )


def require_reader(ctx: MxCtx, conn: Connection, room_id: str) -> RoomAccess:
    """The actor's access to a room they may read; M_FORBIDDEN otherwise (unknown rooms look the same)."""
    access = room_access(ctx.kernel, conn, room_id, ctx.user_id)
    if access is None or not can(ctx.actor, "messenger.room.read", access):
        raise forbidden("You are not a member of this room")
    return access


def joined_room_ids(conn: Connection, mxid: str) -> list[str]:
    m = t.members
    return list(
        conn.execute(sa.select(m.c.room_id).where(m.c.user_id == mxid, m.c.membership == Membership.JOIN)).scalars()
    )


def note_dsp_view(ctx: Ctx, access: RoomAccess, events: int) -> None:
    """A security officer's view of ДСП content: one ledger entry per view (never for other members).

    Called from a worker thread (reads run off the event loop); waits for the entry to be durable.
    """
    if not access.dsp or not dsp_view_is_ledgered(ctx.actor):
        return
    _ledger_dsp_views(ctx, {access.room_id: events})


def note_sync_dsp_views(ctx: Ctx, answer: dict[str, Any]) -> None:
    """Ledger the ДСП rooms whose messages a security officer's /sync answer carries (one entry per room)."""
    joined = answer.get("rooms", {}).get("join", {})
    # Timeline events may be pre-encoded (msgspec.Raw): count them, never decode them here.
    carried = {
        room_id: len(room.get("timeline", {}).get("events", []))
        for room_id, room in joined.items()
        if isinstance(room, dict)
    }
    carried = {room_id: n for room_id, n in carried.items() if n}
    if not carried or not dsp_view_is_ledgered(ctx.actor):
        return
    with ctx.kernel.db.read() as conn:
        marked = set(
            conn.execute(
                sa.select(t.rooms.c.room_id).where(t.rooms.c.room_id.in_(list(carried)), t.rooms.c.dsp == sa.true())
            ).scalars()
        )
    if not marked:
        return
    _ledger_dsp_views(ctx, {room_id: carried[room_id] for room_id in marked}, via="sync")


def _ledger_dsp_views(ctx: Ctx, views: dict[str, int], *, via: str | None = None) -> None:
    """One `messenger.dsp_view` entry per room (room id -> events shown); waits until they are durable."""
    kernel = ctx.kernel

    def job(tx: Any) -> None:
        for room_id in sorted(views):
            obj: dict[str, Any] = {"room": room_id, "events": views[room_id]}
            if via is not None:
                obj["via"] = via
            kernel.ledger.append(
                tx,
                entry_type="access",
                actor=kernel.actor_ref(ctx.actor),
                action="messenger.dsp_view",
                subject=None,
                obj=obj,
            )

    kernel.writer.run(job)


def agency_code(conn: Connection, agency_id: str | None) -> str | None:
    """How an agency is named in an error: its public code (not its internal id)."""
    if agency_id is None:
        return None
    from qorgau.kernel.auth.tables import agencies

    found = conn.execute(sa.select(agencies.c.code).where(agencies.c.id == agency_id)).scalar()
    return str(found) if found is not None else agency_id
