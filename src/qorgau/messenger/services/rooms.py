"""Rooms: creation, membership decisions, state, aliases and member lists.

Creating a room and every membership decision (invite, join, leave, kick, ban, unban) is written to
the ledger in the same transaction as the event that carries it; ordinary messages are not.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from qorgau.kernel.auth.policy import can
from qorgau.kernel.context import Kernel
from qorgau.kernel.db import Tx, utc_now_ms
from qorgau.kernel.errors import Problem
from qorgau.messenger import tables as t
from qorgau.messenger.domain import (
    DSP_STATE,
    MEMBERSHIP_RESULT,
    PRESETS,
    ROOM_VERSION,
    Membership,
    alias_for,
    bad_json,
    check_dsp_member,
    check_event_type,
    check_history_visibility,
    check_power_levels_change,
    default_power_levels,
    forbidden,
    invalid_param,
    is_room_alias,
    is_room_id,
    mx_error,
    new_room_id,
    not_found,
    preset_state,
    room_marked_dsp,
)
from qorgau.messenger.services.access import (
    MembershipChange,
    MxCtx,
    agency_code,
    joined_room_ids,
    membership_refusal,
    require_official,
    require_reader,
    room_access,
)
from qorgau.messenger.services.accounts import UserInfo, lookup_official, lookup_users
from qorgau.messenger.services.events import (
    Draft,
    StoredEvent,
    append,
    current_state,
    draft,
    events_from_rows,
    run_write,
)

JOIN_RULES = ("public", "invite", "knock", "restricted", "private")


@dataclass(frozen=True)
class CreateRoom:
    """POST /createRoom, validated."""

    name: str | None = None
    topic: str | None = None
    invite: list[str] = field(default_factory=list)
    preset: str | None = None
    is_direct: bool = False
    initial_state: list[dict[str, Any]] = field(default_factory=list)
    room_alias_name: str | None = None
    visibility: str = "private"
    power_level_content_override: dict[str, Any] | None = None
    creation_content: dict[str, Any] | None = None


def _ledger_decision(tx: Tx, kernel: Kernel, ctx: MxCtx, action: str, room_id: str, target: str | None) -> None:
    kernel.ledger.append(
        tx,
        entry_type="decision",
        actor=kernel.actor_ref(ctx.actor),
        action=f"messenger.room.{action}",
        subject=kernel.subject_ref("account", target) if target else None,
        obj={"room": room_id},
    )


async def do_create_room(ctx: MxCtx, cmd: CreateRoom) -> str:
    """Create a room with its initial state, the creator joined and the invitees invited."""
    actor = require_official(ctx)
    kernel = ctx.kernel
    server = kernel.settings.server_name
    preset = cmd.preset or ("public_chat" if cmd.visibility == "public" else "private_chat")
    if preset not in PRESETS:
        raise invalid_param(f"unknown preset {preset!r}")
    alias = alias_for(cmd.room_alias_name, server) if cmd.room_alias_name is not None else None
    for item in cmd.initial_state:
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise bad_json("each initial_state event needs a 'type'")
        if not isinstance(item.get("content"), dict) or not isinstance(item.get("state_key", ""), str):
            raise bad_json("each initial_state event needs an object 'content' and a string 'state_key'")
        if item["type"] in ("m.room.create", "m.room.member"):
            raise invalid_param(f"{item['type']} cannot be given in initial_state")
        check_event_type(item["type"])
        if item["type"] == "m.room.history_visibility":
            check_history_visibility(item["content"])
    invitees = sorted({i for i in cmd.invite if i != ctx.user_id})

    dsp = room_marked_dsp(cmd.initial_state, cmd.creation_content)

    def lookup() -> tuple[dict[str, UserInfo], str | None]:
        with kernel.db.read() as conn:
            found = {mxid: lookup_official(kernel, conn, mxid) for mxid in invitees}
            return found, agency_code(conn, actor.agency_id) if dsp else None

    infos, code = await asyncio.to_thread(lookup)
    for mxid in invitees:
        why = check_dsp_member(
            room_dsp=dsp, room_agency=actor.agency_id, member_agency=infos[mxid].agency_id, agency_name=code
        )
        if why is not None:
            raise forbidden(why)
    room_id = new_room_id(server)
    me = ctx.user_id
    ts = utc_now_ms()

    def make(event_type: str, content: dict[str, Any], state_key: str = "", **kw: Any) -> Draft:
        return draft(kernel, room_id, event_type, me, content, state_key=state_key, ts=ts, **kw)

    creation = {k: v for k, v in (cmd.creation_content or {}).items() if k not in ("creator", "room_version")}
    if dsp:
        creation["kz.qorgau.dsp"] = True
    power = default_power_levels(me, extra_admins=invitees if preset == "trusted_private_chat" else ())
    power.update(cmd.power_level_content_override or {})
    drafts = [
        make("m.room.create", {**creation, "creator": me, "room_version": ROOM_VERSION}),
        make(
            "m.room.member",
            {"membership": "join", "displayname": actor.display_name},
            me,
            account_id=actor.user_id,
            agency_id=actor.agency_id,
        ),
        make("m.room.power_levels", power),
    ]
    if alias is not None:
        drafts.append(make("m.room.canonical_alias", {"alias": alias}))
    initial = {(i["type"], i.get("state_key", "")): i["content"] for i in cmd.initial_state}
    for event_type, content in preset_state(preset):
        if (event_type, "") not in initial:
            drafts.append(make(event_type, content))
    if dsp:
        initial[(DSP_STATE, "")] = {"dsp": True}  # the marking in the state, however it was asked for
    for (event_type, state_key), content in initial.items():
        if event_type == DSP_STATE and not dsp:
            continue  # an unmarked room carries no marking state
        drafts.append(make(event_type, content, state_key))
    if cmd.name:
        drafts.append(make("m.room.name", {"name": cmd.name[:255]}))
    if cmd.topic:
        drafts.append(make("m.room.topic", {"topic": cmd.topic}))
    for mxid in invitees:
        info = infos[mxid]
        content: dict[str, Any] = {"membership": "invite", "displayname": info.display_name}
        if cmd.is_direct:
            content["is_direct"] = True
        drafts.append(make("m.room.member", content, mxid, account_id=info.account_id, agency_id=info.agency_id))
    join_rule = initial.get(("m.room.join_rules", ""), dict(preset_state(preset))["m.room.join_rules"])
    encrypted = ("m.room.encryption", "") in initial

    def job(tx: Tx) -> str | Problem:
        if alias is not None and tx.execute(sa.select(t.aliases.c.alias).where(t.aliases.c.alias == alias)).first():
            return mx_error("M_ROOM_IN_USE", "This room alias is already taken")
        tx.execute(
            t.rooms.insert().values(
                room_id=room_id,
                creator=me,
                agency_id=actor.agency_id,
                room_version=ROOM_VERSION,
                is_direct=cmd.is_direct,
                dsp=dsp,
                encrypted=encrypted,
                join_rule=str(join_rule.get("join_rule", "invite"))[:16],
                created_at=ts,
            )
        )
        if alias is not None:
            tx.execute(t.aliases.insert().values(alias=alias, room_id=room_id, creator=me, created_at=ts))
        for d in drafts:
            append(tx, kernel, d)
        kernel.ledger.append(
            tx,
            entry_type="decision",
            actor=kernel.actor_ref(actor),
            action="messenger.room.create",
            subject=None,
            obj={"room": room_id, "invited": len(invitees), "direct": cmd.is_direct, "dsp": dsp},
        )
        for mxid in invitees:
            _ledger_decision(tx, kernel, ctx, "invite", room_id, infos[mxid].account_id)
        return room_id

    return str(await run_write(kernel, job))


def _resolve_room(conn: Any, room_ref: str) -> str:
    if is_room_alias(room_ref):
        found = conn.execute(sa.select(t.aliases.c.room_id).where(t.aliases.c.alias == room_ref)).scalar()
        if found is None:
            raise not_found("Unknown room alias")
        return str(found)
    if not is_room_id(room_ref):
        raise invalid_param("not a room id or alias")
    return room_ref


async def do_change_membership(
    ctx: MxCtx, room_ref: str, action: str, target: str | None = None, reason: str | None = None
) -> str:
    """invite/join/leave/kick/ban/unban, decided by the room's rules; returns the room id."""
    actor = require_official(ctx)
    kernel = ctx.kernel
    target = target or ctx.user_id

    def prepare() -> tuple[str, UserInfo]:
        with kernel.db.read() as conn:
            room_id = _resolve_room(conn, room_ref)
            if action == "invite":
                return room_id, lookup_official(kernel, conn, target)
            found = lookup_users(kernel, conn, [target]).get(target)
        if found is None:
            raise not_found("Unknown user")
        return room_id, found

    room_id, info = await asyncio.to_thread(prepare)
    result = MEMBERSHIP_RESULT[action]
    content: dict[str, Any] = {"membership": result.value}
    if result in (Membership.JOIN, Membership.INVITE):
        content["displayname"] = info.display_name
    if reason:
        content["reason"] = str(reason)[:1000]
    d = draft(
        kernel,
        room_id,
        "m.room.member",
        ctx.user_id,
        content,
        state_key=target,
        account_id=info.account_id,
        agency_id=info.agency_id,
    )

    def job(tx: Tx) -> str | Problem:
        access = room_access(kernel, tx.conn, room_id, ctx.user_id)
        if access is None:
            return not_found("Unknown room")
        target_membership = tx.execute(
            sa.select(t.members.c.membership).where(t.members.c.room_id == room_id, t.members.c.user_id == target)
        ).scalar()
        change = MembershipChange(access, action, target, target_membership)
        if not can(actor, "messenger.room.membership", change):
            return forbidden(membership_refusal(change) or "You may not do this")
        joining = action in ("invite", "join") and target_membership not in (Membership.JOIN, Membership.INVITE)
        why = joining and check_dsp_member(
            room_dsp=access.dsp,
            room_agency=access.agency_id,
            member_agency=info.agency_id,
            agency_name=agency_code(tx.conn, access.agency_id) if access.dsp else None,
        )
        if why:
            return forbidden(why)
        if action == "join" and target_membership == Membership.JOIN:
            return room_id  # already in: nothing changes
        append(tx, kernel, d)
        _ledger_decision(tx, kernel, ctx, action, room_id, info.account_id)
        return room_id

    return str(await run_write(kernel, job))


async def do_set_state(ctx: MxCtx, room_id: str, event_type: str, state_key: str, content: dict[str, Any]) -> str:
    """Set a state event, within the sender's power level and the rules of special state."""
    require_official(ctx)
    check_event_type(event_type)
    if event_type == "m.room.create":
        raise forbidden("The creation event cannot be changed")
    if event_type == DSP_STATE:
        raise forbidden("The ДСП marking is set when a room is created and cannot be changed")
    kernel = ctx.kernel
    if event_type == "m.room.member" and (state_key != ctx.user_id or content.get("membership") != "join"):
        raise forbidden("Use the membership endpoints (invite, join, leave, kick, ban)")
    if event_type == "m.room.join_rules" and content.get("join_rule") not in JOIN_RULES:
        raise bad_json("unknown join_rule")
    if event_type == "m.room.history_visibility":
        check_history_visibility(content)
    actor = ctx.actor
    assert actor is not None
    d = draft(
        kernel,
        room_id,
        event_type,
        ctx.user_id,
        content,
        state_key=state_key,
        account_id=actor.user_id if event_type == "m.room.member" else None,
        agency_id=actor.agency_id if event_type == "m.room.member" else None,
    )

    def job(tx: Tx) -> str | Problem:
        access = room_access(kernel, tx.conn, room_id, ctx.user_id, event_type=event_type, is_state=True)
        if access is None or not can(actor, "messenger.room.send", access):
            return forbidden("You may not change this state in this room")
        if event_type == "m.room.member" and access.membership != Membership.JOIN:
            return forbidden("Use the membership endpoints (invite, join, leave, kick, ban)")
        if event_type == "m.room.power_levels":
            why = check_power_levels_change(access.power, content, ctx.user_id)
            if why is not None:
                return forbidden(why)
        append(tx, kernel, d)
        if event_type == "m.room.join_rules":
            tx.execute(t.rooms.update().where(t.rooms.c.room_id == room_id).values(join_rule=content["join_rule"]))
        if event_type == "m.room.encryption":
            tx.execute(t.rooms.update().where(t.rooms.c.room_id == room_id).values(encrypted=True))
        return d.event_id

    return str(await run_write(kernel, job))


def get_state(ctx: MxCtx, room_id: str) -> list[dict[str, Any]]:
    require_official(ctx)
    with ctx.kernel.db.read() as conn:
        require_reader(ctx, conn, room_id)
        return [e.to_dict() for e in current_state(ctx.kernel, conn, room_id)]


def get_state_content(ctx: MxCtx, room_id: str, event_type: str, state_key: str) -> dict[str, Any]:
    require_official(ctx)
    e, s = t.events, t.room_state
    with ctx.kernel.db.read() as conn:
        require_reader(ctx, conn, room_id)
        rows = conn.execute(
            sa.select(e)
            .join(s, s.c.event_id == e.c.event_id)
            .where(s.c.room_id == room_id, s.c.type == event_type, s.c.state_key == state_key)
        ).all()
        found = events_from_rows(ctx.kernel, conn, rows)
    if not found:
        raise not_found("No such state event")
    return found[0].content


def room_members(
    ctx: MxCtx, room_id: str, *, membership: str | None = None, not_membership: str | None = None
) -> list[StoredEvent]:
    require_official(ctx)
    e, m = t.events, t.members
    query = sa.select(e).join(m, m.c.event_id == e.c.event_id).where(m.c.room_id == room_id)
    if membership:
        query = query.where(m.c.membership == membership)
    if not_membership:
        query = query.where(m.c.membership != not_membership)
    with ctx.kernel.db.read() as conn:
        require_reader(ctx, conn, room_id)
        return events_from_rows(ctx.kernel, conn, conn.execute(query.order_by(e.c.stream_id)).all())


def joined_members(ctx: MxCtx, room_id: str) -> dict[str, dict[str, Any]]:
    joined: dict[str, dict[str, Any]] = {}
    for event in room_members(ctx, room_id, membership=Membership.JOIN):
        joined[event.state_key or ""] = {
            "display_name": event.content.get("displayname"),
            "avatar_url": event.content.get("avatar_url"),
        }
    return joined


def joined_rooms(ctx: MxCtx) -> list[str]:
    require_official(ctx)
    with ctx.kernel.db.read() as conn:
        return joined_room_ids(conn, ctx.user_id)


def resolve_alias(ctx: MxCtx, alias: str) -> dict[str, Any]:
    require_official(ctx)
    if not is_room_alias(alias):
        raise invalid_param("not a room alias")
    with ctx.kernel.db.read() as conn:
        room_id = _resolve_room(conn, alias)
    return {"room_id": room_id, "servers": [ctx.kernel.settings.server_name]}
