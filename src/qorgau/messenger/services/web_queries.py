"""Read models for the officials' web app: room list with unread counts, timelines, the agency directory.

Reads only; every change goes through the use cases in `rooms`, `events` and `ephemeral`, so the browser
and Matrix clients see one history. Each function checks the actor's right the way the Matrix API does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from qorgau.kernel.auth import tables as at
from qorgau.messenger import tables as t
from qorgau.messenger.domain import MESSENGER_ROLES, Membership, user_id
from qorgau.messenger.services.access import MxCtx, note_dsp_view, require_official, require_reader
from qorgau.messenger.services.events import (
    StoredEvent,
    count_unread,
    events_from_rows,
    load_events,
    room_events,
)
from qorgau.messenger.services.visibility import current_setting, room_visibility, visible

UNREAD_CAP = 99
TIMELINE_PAGE = 60
_ROLE_VALUES = sorted(r.value for r in MESSENGER_ROLES)


@dataclass
class RoomSummary:
    """One line of the room list."""

    room_id: str
    name: str
    membership: str
    is_direct: bool
    unread: int = 0
    last_body: str | None = None
    last_sender: str | None = None
    last_ts: int = 0
    last_stream: int = 0
    inviter: str | None = None
    dsp: bool = False  # "For official use only": the list shows the badge, never a preview


@dataclass
class RoomView:
    room_id: str
    name: str
    topic: str | None
    is_direct: bool
    members: dict[str, str]  # joined: user id -> display name
    invited: dict[str, str]
    names: dict[str, str] = field(default_factory=dict)  # everyone ever in the room
    dsp: bool = False
    history_visibility: str = "shared"  # what members who join later see of the history


@dataclass(frozen=True)
class Official:
    user_id: str
    display_name: str


def _state_content(ctx: MxCtx, conn: Connection, room_id: str, event_type: str) -> dict[str, Any] | None:
    e, s = t.events, t.room_state
    rows = conn.execute(
        sa.select(e)
        .join(s, s.c.event_id == e.c.event_id)
        .where(s.c.room_id == room_id, s.c.type == event_type, s.c.state_key == "")
    ).all()
    found = events_from_rows(ctx.kernel, conn, rows)
    return found[0].content if found else None


def _member_names(ctx: MxCtx, conn: Connection, room_id: str) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(joined, invited, everyone): user id -> display name, from the membership events."""
    e, m = t.events, t.members
    rows = conn.execute(
        sa.select(e).join(m, m.c.event_id == e.c.event_id).where(m.c.room_id == room_id).order_by(e.c.stream_id)
    ).all()
    joined: dict[str, str] = {}
    invited: dict[str, str] = {}
    names: dict[str, str] = {}
    for event in events_from_rows(ctx.kernel, conn, rows):
        mxid = event.state_key or ""
        name = str(event.content.get("displayname") or mxid.split(":")[0].lstrip("@"))
        names[mxid] = name
        if event.membership == Membership.JOIN:
            joined[mxid] = name
        elif event.membership == Membership.INVITE:
            invited[mxid] = name
    return joined, invited, names


def _room_name(ctx: MxCtx, conn: Connection, room_id: str, joined: dict[str, str], invited: dict[str, str]) -> str:
    content = _state_content(ctx, conn, room_id, "m.room.name")
    if content and content.get("name"):
        return str(content["name"])
    others = [n for u, n in {**joined, **invited}.items() if u != ctx.user_id]
    return ", ".join(sorted(others)[:3]) or ""


def room_list(ctx: MxCtx) -> list[RoomSummary]:
    """The rooms the official is in or invited to: invitations first, then the most recent activity."""
    require_official(ctx)
    m, r, e = t.members, t.rooms, t.events
    out: list[RoomSummary] = []
    with ctx.kernel.db.read() as conn:
        rows = conn.execute(
            sa.select(m.c.room_id, m.c.membership, m.c.event_id, r.c.is_direct, r.c.dsp)
            .join(r, r.c.room_id == m.c.room_id)
            .where(m.c.user_id == ctx.user_id, m.c.membership.in_([Membership.JOIN, Membership.INVITE]))
        ).all()
        for row in rows:
            joined, invited, names = _member_names(ctx, conn, row.room_id)
            summary = RoomSummary(
                room_id=row.room_id,
                name=_room_name(ctx, conn, row.room_id, joined, invited),
                membership=row.membership,
                is_direct=bool(row.is_direct),
                dsp=bool(row.dsp),
            )
            if row.membership == Membership.INVITE:
                invite = conn.execute(sa.select(e.c.sender, e.c.stream_id).where(e.c.event_id == row.event_id)).first()
                if invite is not None:
                    summary.inviter = names.get(invite.sender, invite.sender)
                    summary.last_stream = int(invite.stream_id)
                out.append(summary)
                continue
            # The preview and the count never show history hidden from the official (see visibility).
            visibility = room_visibility(ctx.kernel, conn, row.room_id, ctx.user_id)
            last = room_events(ctx.kernel, conn, row.room_id, limit=1, backwards=True, visibility=visibility)
            if last:
                summary.last_stream = last[0].stream_id
                summary.last_ts = last[0].ts
            latest = sa.select(e).where(e.c.room_id == row.room_id, e.c.type == "m.room.message")
            if visibility is not None:
                latest = latest.where(visibility.clause(e))
            message = conn.execute(latest.order_by(e.c.stream_id.desc()).limit(1)).all()
            if message:
                found = events_from_rows(ctx.kernel, conn, message)[0]
                shown = found.content.get("m.new_content") or found.content  # an edit shows its new text
                body = shown.get("body") if isinstance(shown, dict) else None
                summary.last_body = str(body or "") if found.redacted_because is None else None
                if summary.dsp and summary.last_body is not None:
                    summary.last_body = ""  # no ДСП text outside the room view (whose views are ledgered)
                summary.last_sender = names.get(found.sender, found.sender)
            summary.unread = count_unread(conn, row.room_id, ctx.user_id, cap=UNREAD_CAP + 1, visibility=visibility)
            out.append(summary)
    out.sort(key=lambda s: (s.membership != Membership.INVITE, -s.last_stream))
    return out


def room_view(ctx: MxCtx, room_id: str) -> RoomView:
    """A room the official has joined: its name, topic and members (M_FORBIDDEN otherwise)."""
    require_official(ctx)
    with ctx.kernel.db.read() as conn:
        access = require_reader(ctx, conn, room_id)
        joined, invited, names = _member_names(ctx, conn, room_id)
        topic = _state_content(ctx, conn, room_id, "m.room.topic")
        is_direct = conn.execute(sa.select(t.rooms.c.is_direct).where(t.rooms.c.room_id == room_id)).scalar()
        return RoomView(
            room_id=room_id,
            name=_room_name(ctx, conn, room_id, joined, invited),
            topic=str(topic["topic"]) if topic and topic.get("topic") else None,
            is_direct=bool(is_direct),
            members=joined,
            invited=invited,
            names=names,
            dsp=access.dsp,
            history_visibility=current_setting(ctx.kernel, conn, room_id),
        )


def timeline(ctx: MxCtx, room_id: str, *, after: int | None = None, limit: int = TIMELINE_PAGE) -> list[StoredEvent]:
    """The room's latest events (or those after `after`), oldest first, without the history hidden
    from the official by the room's history visibility.

    Showing a ДСП room's events to a security officer is a view written to the ledger.
    """
    require_official(ctx)
    with ctx.kernel.db.read() as conn:
        access = require_reader(ctx, conn, room_id)
        visibility = room_visibility(ctx.kernel, conn, room_id, ctx.user_id)
        if after is not None:
            found = room_events(
                ctx.kernel, conn, room_id, after=after, limit=limit, backwards=False, visibility=visibility
            )
        else:
            newest = room_events(ctx.kernel, conn, room_id, limit=limit, backwards=True, visibility=visibility)
            found = list(reversed(newest))
    if found:
        note_dsp_view(ctx, access, len(found))
    return found


def room_events_by_id(ctx: MxCtx, room_id: str, event_ids: list[str]) -> dict[str, StoredEvent]:
    """Events of a room the official reads, by id (those of other rooms, or hidden from them, are left out)."""
    require_official(ctx)
    if not event_ids:
        return {}
    with ctx.kernel.db.read() as conn:
        require_reader(ctx, conn, room_id)
        visibility = room_visibility(ctx.kernel, conn, room_id, ctx.user_id)
        return {
            e.event_id: e
            for e in load_events(ctx.kernel, conn, event_ids=event_ids)
            if e.room_id == room_id and visible(visibility, e)
        }


def agency_officials(ctx: MxCtx) -> list[Official]:
    """The officials of the actor's own agency (the directory picker), the actor left out."""
    actor = require_official(ctx)
    u = at.users
    server = ctx.kernel.settings.server_name
    with ctx.kernel.db.read() as conn:
        rows = conn.execute(
            sa.select(u.c.username, u.c.display_name)
            .where(
                u.c.agency_id == actor.agency_id,
                u.c.role.in_(_ROLE_VALUES),
                u.c.disabled == sa.false(),
                u.c.username != actor.username,
            )
            .order_by(u.c.display_name)
        ).all()
    return [Official(user_id(r.username, server), r.display_name) for r in rows]


def direct_room_with(ctx: MxCtx, other: str) -> str | None:
    """A direct chat both the actor and `other` are in (joined or invited), if there is one."""
    require_official(ctx)
    m, r = t.members, t.rooms
    mine = sa.select(m.c.room_id).where(m.c.user_id == ctx.user_id, m.c.membership == Membership.JOIN)
    with ctx.kernel.db.read() as conn:
        found = conn.execute(
            sa.select(m.c.room_id)
            .join(r, r.c.room_id == m.c.room_id)
            .where(
                r.c.is_direct == sa.true(),
                m.c.user_id == other,
                m.c.membership.in_([Membership.JOIN, Membership.INVITE]),
                m.c.room_id.in_(mine),
            )
            .limit(1)
        ).scalar()
    return str(found) if found is not None else None


def changed_rooms(ctx: MxCtx, after: int, upto: int) -> list[tuple[str, int]]:
    """(room id, newest stream id) of the actor's rooms with events in (after, upto]: live updates.

    Rooms the actor is joined to or invited to now, plus any room whose membership event names them
    (a new invitation, a kick), so the list refreshes when they come and go.
    """
    require_official(ctx)
    e, m, rc = t.events, t.members, t.receipts
    mine = sa.select(m.c.room_id).where(
        m.c.user_id == ctx.user_id, m.c.membership.in_([Membership.JOIN, Membership.INVITE])
    )
    with ctx.kernel.db.read() as conn:
        rows = conn.execute(
            sa.select(e.c.room_id, sa.func.max(e.c.stream_id))
            .where(
                e.c.stream_id > after,
                e.c.stream_id <= upto,
                sa.or_(e.c.room_id.in_(mine), sa.and_(e.c.type == "m.room.member", e.c.state_key == ctx.user_id)),
            )
            .group_by(e.c.room_id)
        ).all()
        # The actor's own receipts (read in another tab or client) change their unread counts.
        receipts = conn.execute(
            sa.select(rc.c.room_id, sa.func.max(rc.c.stream_id))
            .where(rc.c.user_id == ctx.user_id, rc.c.stream_id > after, rc.c.stream_id <= upto)
            .group_by(rc.c.room_id)
        ).all()
    found: dict[str, int] = {}
    for room_id, stream in [*rows, *receipts]:
        found[room_id] = max(found.get(room_id, 0), int(stream))
    return sorted(found.items(), key=lambda item: item[1])


__all__ = [
    "Official",
    "RoomSummary",
    "RoomView",
    "agency_officials",
    "changed_rooms",
    "count_unread",
    "direct_room_with",
    "room_events_by_id",
    "room_list",
    "room_view",
    "timeline",
]


def media_info(ctx: MxCtx, uri: str) -> dict[str, Any]:
    """The `info` of a file message for an upload the actor just made (type, size, image size)."""
    require_official(ctx)
    m = t.media
    media_id = uri.rsplit("/", 1)[1]
    with ctx.kernel.db.read() as conn:
        row = conn.execute(
            sa.select(m.c.content_type, m.c.size, m.c.width, m.c.height).where(m.c.media_id == media_id)
        ).one()
    info: dict[str, Any] = {"mimetype": row.content_type, "size": int(row.size)}
    if row.width and row.height:
        info.update(w=int(row.width), h=int(row.height))
    return info


@dataclass
class Found:
    room_id: str
    room_name: str
    sender_name: str
    event: StoredEvent


def search_messages(ctx: MxCtx, term: str) -> list[Found]:
    """Messages matching every word of `term` in the actor's rooms, newest first (the Matrix search)."""
    from qorgau.messenger.services import search

    body = {
        "search_categories": {"room_events": {"search_term": term, "keys": ["content.body"], "filter": {"limit": 50}}}
    }
    answer = search.search(ctx, body, None)["search_categories"]["room_events"]
    names = {s.room_id: s.name for s in room_list(ctx)}
    senders = {item["result"]["sender"] for item in answer["results"]}
    usernames = {mxid[1:].split(":", 1)[0]: mxid for mxid in senders}
    with ctx.kernel.db.read() as conn:
        people = {
            usernames[r.username]: r.display_name
            for r in conn.execute(
                sa.select(at.users.c.username, at.users.c.display_name).where(at.users.c.username.in_(list(usernames)))
            )
        }
    found: list[Found] = []
    for item in answer["results"]:
        e = item["result"]
        found.append(
            Found(
                e["room_id"],
                names.get(e["room_id"], ""),
                people.get(e["sender"], e["sender"]),
                StoredEvent(
                    stream_id=0,
                    event_id=e["event_id"],
                    room_id=e["room_id"],
                    type=e["type"],
                    state_key=None,
                    sender=e["sender"],
                    ts=int(e["origin_server_ts"]),
                    content=e["content"],
                ),
            )
        )
    return found
