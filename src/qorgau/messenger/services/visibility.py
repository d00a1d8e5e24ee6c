"""Room history visibility (``m.room.history_visibility``): which of a room's events a member may read.

Readers ask :func:`room_visibility` once per room and hand the answer to
:func:`~qorgau.messenger.services.events.room_events`, which turns the hidden stream ranges into SQL
conditions, so a page of history is exact (never a short page because events were dropped after the
LIMIT). Most rooms never leave `shared`: for them the answer is None after one primary-key lookup of the
room's current setting, and no condition is added. The list of a room's settings is cached per process
by the id of the current setting's event: a new setting is a new state event, hence a new key, so
processes never serve a stale list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from qorgau.kernel.context import Kernel
from qorgau.messenger import tables as t
from qorgau.messenger.domain import (
    DEFAULT_HISTORY_VISIBILITY,
    OPEN_HISTORY,
    StreamRange,
    hidden_ranges,
)
from qorgau.messenger.runtime import runtime

HISTORY_VISIBILITY = "m.room.history_visibility"

Settings = tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class Visibility:
    """The ranges of a room's stream that `user_id` may not read (their own events excepted)."""

    user_id: str
    hidden: tuple[StreamRange, ...]

    def allows(self, stream_id: int, sender: str) -> bool:
        if sender == self.user_id:
            return True
        return not any(lo <= stream_id and (hi is None or stream_id <= hi) for lo, hi in self.hidden)

    def clause(self, events: sa.Table) -> sa.ColumnElement[bool]:
        """The SQL condition on `events` (messenger_events) that keeps the rows the user may read."""
        stream = events.c.stream_id
        outside = [stream < lo if hi is None else sa.or_(stream < lo, stream > hi) for lo, hi in self.hidden]
        return sa.or_(events.c.sender == self.user_id, sa.and_(*outside))


_CURRENT = sa.select(t.room_state.c.event_id).where(
    t.room_state.c.room_id == sa.bindparam("room_id"),
    t.room_state.c.type == HISTORY_VISIBILITY,
    t.room_state.c.state_key == "",
)


def room_settings(kernel: Kernel, conn: Connection, room_id: str) -> Settings:
    """Every history visibility the room has had: (stream id, value), in stream order (cached)."""
    current = conn.execute(_CURRENT, {"room_id": room_id}).scalar()
    if current is None:
        return ()
    cache = runtime(kernel).history_visibility
    found = cache.get(current)
    if found is not None:
        return found  # type: ignore[no-any-return]
    from qorgau.messenger.services.events import events_from_rows

    e = t.events
    rows = conn.execute(
        sa.select(e)
        .where(e.c.room_id == room_id, e.c.type == HISTORY_VISIBILITY, e.c.state_key == "")
        .order_by(e.c.stream_id)
    ).all()
    settings = tuple((event.stream_id, _value(event.content)) for event in events_from_rows(kernel, conn, rows))
    cache.put(current, settings)
    return settings


def _value(content: Any) -> str:
    value = content.get("history_visibility") if isinstance(content, dict) else None
    return value if isinstance(value, str) else DEFAULT_HISTORY_VISIBILITY


def room_visibility(kernel: Kernel, conn: Connection, room_id: str, mxid: str) -> Visibility | None:
    """What `mxid` may not read of `room_id`'s history; None when they may read all of it.

    Rooms that were always `shared` (or `world_readable`) cost one primary-key lookup; only rooms that
    were ever `invited` or `joined` read the user's membership events (a short list) as well.
    """
    settings = room_settings(kernel, conn, room_id)
    if all(value in OPEN_HISTORY for _s, value in settings):
        return None
    e = t.events
    memberships = conn.execute(
        sa.select(e.c.stream_id, e.c.membership)
        .where(e.c.state_key == mxid, e.c.type == "m.room.member", e.c.room_id == room_id)
        .order_by(e.c.stream_id)
    ).all()
    hidden = hidden_ranges(settings, [(int(r.stream_id), r.membership) for r in memberships])
    return Visibility(mxid, hidden) if hidden else None


def visible(visibility: Visibility | None, event: Any) -> bool:
    """Whether a stored event is readable under `visibility` (None: the whole history is)."""
    return visibility is None or visibility.allows(event.stream_id, event.sender)


def rooms_visibility(kernel: Kernel, conn: Connection, room_ids: Iterable[str], mxid: str) -> dict[str, Visibility]:
    """:func:`room_visibility` for several rooms; rooms readable in full are left out."""
    out: dict[str, Visibility] = {}
    for room_id in room_ids:
        found = room_visibility(kernel, conn, room_id, mxid)
        if found is not None:
            out[room_id] = found
    return out


def current_setting(kernel: Kernel, conn: Connection, room_id: str) -> str:
    """The room's history visibility now (shared when it has none)."""
    settings = room_settings(kernel, conn, room_id)
    return settings[-1][1] if settings else DEFAULT_HISTORY_VISIBILITY
