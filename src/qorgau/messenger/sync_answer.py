"""Building one /sync answer for the stream range (since, upto] of one device.

The builder first runs on the event loop with the shared window's items and no database connection;
whatever needs the database (a newly joined room's state, account data, to-device messages, unread
counts after a receipt) raises :class:`NeedDatabase`, and the engine builds the answer again in a
thread with a connection. It changes nothing until the engine applies its results (`unread_updates`,
`to_device_delivered`), so a half-built answer leaves no trace.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from qorgau.kernel.db import utc_now_ms
from qorgau.messenger import tables as t
from qorgau.messenger.domain import NOTIFYING_TYPES, Membership, stream_token
from qorgau.messenger.services.accounts import TOPIC_DEVICES
from qorgau.messenger.services.e2ee import (
    TOPIC_KEYS_CLAIMED,
    TOPIC_TO_DEVICE,
    one_time_key_counts,
    to_device_inbox,
    unused_fallback_key_types,
)
from qorgau.messenger.services.ephemeral import TOPIC_ACCOUNT_DATA, account_data_rows
from qorgau.messenger.services.events import READ_RECEIPTS, StoredEvent, count_unread, current_state, room_events
from qorgau.messenger.services.visibility import Visibility, room_visibility

if TYPE_CHECKING:
    from qorgau.kernel.context import Kernel
    from qorgau.messenger.sync import Item, SyncRequest

UNREAD_CAP = 1_000
ACCOUNT_TOPICS = frozenset({TOPIC_ACCOUNT_DATA, TOPIC_TO_DEVICE, TOPIC_KEYS_CLAIMED})
STRIPPED_STATE_TYPES = frozenset(
    {
        "m.room.create",
        "m.room.name",
        "m.room.topic",
        "m.room.join_rules",
        "m.room.canonical_alias",
        "m.room.avatar",
        "m.room.encryption",
    }
)

Memberships = dict[str, tuple[str, int]]  # room -> (membership, stream id of that membership event)


class NeedDatabase(Exception):
    """The answer needs the database: build it again in a thread, with a connection."""


class Answer:
    """One /sync answer; `build()` returns it, or None when nothing concerns the device."""

    def __init__(
        self,
        kernel: Kernel,
        req: SyncRequest,
        since: int | None,
        upto: int,
        items: list[Item],
        mem: Memberships,
        unread: dict[tuple[str, str], tuple[int, int]],
        conn: Connection | None,
    ) -> None:
        self.kernel = kernel
        self.req = req
        self.since = since
        self.upto = upto
        self.items = items
        self.mem = mem
        self.unread = unread
        self.conn = conn
        self.me = req.mxid
        self.device_key = req.ctx.device_key
        self.filter = req.filter
        self.limit = req.filter.timeline_limit
        self.full = since is None or req.full_state
        self.now = utc_now_ms()
        # Results the engine applies once the answer is built.
        self.unread_updates: dict[tuple[str, str], tuple[int, int]] = {}
        self.to_device_delivered: int | None = None
        # What the items say, sorted once.
        self.by_room: dict[str, list[Item]] = {}
        self.my_membership: dict[str, list[StoredEvent]] = {}
        self.account_topics: set[str] = set()
        self.changed_devices: set[str] = set()
        self.newly_joined: set[str] = set()

    def db(self) -> Connection:
        if self.conn is None:
            raise NeedDatabase
        return self.conn

    def build(self) -> dict[str, Any] | None:
        self._sort_items()
        join, invite, leave = self._rooms()
        out: dict[str, Any] = {"next_batch": stream_token(self.upto)}
        global_data = self._account_data(join)
        rooms = {k: v for k, v in (("join", join), ("invite", invite), ("leave", leave)) if v}
        if rooms:
            out["rooms"] = rooms
        if global_data:
            out["account_data"] = {"events": global_data}
        out.update(self._device_parts())
        if self.since is not None and len(out) == 1:
            return None
        return out

    def _sort_items(self) -> None:
        for item in self.items:
            if item.room_id is not None:
                self.by_room.setdefault(item.room_id, []).append(item)
            event = item.event
            if event is not None and event.type == "m.room.member" and event.state_key == self.me:
                self.my_membership.setdefault(event.room_id, []).append(event)
            if item.topic in ACCOUNT_TOPICS and item.account_id == self.req.account_id:
                self.account_topics.add(item.topic)
            elif item.topic == TOPIC_DEVICES and item.user is not None:
                joined = {r for r, (m, _s) in self.mem.items() if m == Membership.JOIN}
                if item.user == self.me or item.rooms & joined:
                    self.changed_devices.add(item.user)

    # -- rooms ---------------------------------------------------------------------------------

    def _rooms(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        rf = self.filter.room
        join: dict[str, Any] = {}
        invite: dict[str, Any] = {}
        leave: dict[str, Any] = {}
        candidates = list(self.mem) if self.full else [r for r in self.by_room if r in self.mem]
        for room_id in candidates:
            if not rf.allows_room(room_id):
                continue
            membership, member_stream = self.mem[room_id]
            changes = self.my_membership.get(room_id, [])
            if membership == Membership.JOIN:
                newly = self.since is None or any(
                    e.membership == Membership.JOIN and e.prev_membership != Membership.JOIN for e in changes
                )
                if newly and self.since is not None:
                    self.newly_joined.add(room_id)
                section = self._joined_room(room_id, self.by_room.get(room_id, []), newly=newly)
                if section is not None:
                    join[room_id] = section
            elif membership == Membership.INVITE and (self.full or changes):
                invite[room_id] = {"invite_state": {"events": self._invite_state(room_id)}}
            elif membership in (Membership.LEAVE, Membership.BAN) and (
                (changes and self.since is not None) or (rf.include_leave and self.full)
            ):
                leave[room_id] = self._left_room(room_id, self.by_room.get(room_id, []), member_stream)
        return join, invite, leave

    def _joined_room(self, room_id: str, items: list[Item], *, newly: bool) -> dict[str, Any] | None:
        rf = self.filter.room
        events = [i.event for i in items if i.event is not None]
        visibility: Visibility | None = None
        if newly:
            # History from before the join may be hidden (m.room.history_visibility). An incremental
            # timeline of a room the user was already joined to holds only events from while they
            # were joined, which every setting shows: that path (in memory) needs no check.
            visibility = room_visibility(self.kernel, self.db(), room_id, self.me)
            recent = room_events(
                self.kernel,
                self.db(),
                room_id,
                upto=self.upto,
                limit=self.limit + 1,
                backwards=True,
                event_filter=rf.timeline,
                visibility=visibility,
            )
            recent.reverse()
        else:
            recent = [e for e in events if rf.timeline.allows(e.type, e.sender, e.content)]
        limited = len(recent) > self.limit
        timeline = recent[-self.limit :] if self.limit else []
        if newly or self.req.full_state:
            shown = {e.event_id for e in timeline}
            state = [
                e
                for e in current_state(self.kernel, self.db(), room_id, self.upto)
                if e.event_id not in shown and rf.state.allows(e.type, e.sender)
            ]
        else:
            state = self._skipped_state(events, timeline) if limited else []
        ephemeral = self._ephemeral(room_id, items, full=newly or self.req.full_state)
        if not (newly or self.req.full_state or timeline or state or ephemeral or limited):
            return None
        prev = timeline[0].stream_id - 1 if timeline else self.upto
        return {
            "timeline": {
                "events": [e.for_sync(self.device_key) for e in timeline],
                "limited": limited,
                "prev_batch": stream_token(prev),
            },
            "state": {"events": [e.for_sync(self.device_key) for e in state]},
            "ephemeral": {"events": ephemeral},
            "account_data": {"events": []},
            "unread_notifications": self._unread(room_id, events, newly=newly, visibility=visibility),
        }

    def _skipped_state(self, events: list[StoredEvent], timeline: list[StoredEvent]) -> list[StoredEvent]:
        """State changes a limited timeline left out: the latest of each key before its first event."""
        first = timeline[0].stream_id if timeline else self.upto + 1
        latest: dict[tuple[str, str], StoredEvent] = {}
        for e in events:
            if e.state_key is not None and e.stream_id < first and self.filter.room.state.allows(e.type, e.sender):
                latest[(e.type, e.state_key)] = e
        return list(latest.values())

    def _left_room(self, room_id: str, items: list[Item], member_stream: int) -> dict[str, Any]:
        timeline_filter = self.filter.room.timeline
        events = [
            i.event
            for i in items
            if i.event is not None
            and i.event.stream_id <= member_stream
            and timeline_filter.allows(i.event.type, i.event.sender, i.event.content)
        ]
        changes = self.my_membership.get(room_id, [])
        if events and not (changes and changes[0].prev_membership == Membership.JOIN):
            # Not joined when this answer's range began (an invitation declined or withdrawn): what
            # happened meanwhile may be hidden from them. Rare, so it may cost a query; a member who
            # leaves saw everything up to their leave and skips this.
            visibility = room_visibility(self.kernel, self.db(), room_id, self.me)
            if visibility is not None:
                events = [e for e in events if visibility.allows(e.stream_id, e.sender)]
        timeline = events[-self.limit :] if self.limit else []
        prev = timeline[0].stream_id - 1 if timeline else member_stream
        return {
            "timeline": {
                "events": [e.for_sync(self.device_key) for e in timeline],
                "limited": len(events) > self.limit,
                "prev_batch": stream_token(prev),
            },
            "state": {"events": []},
            "account_data": {"events": []},
        }

    def _invite_state(self, room_id: str) -> list[dict[str, Any]]:
        """Stripped state for an invite: the room's name and rules, the invite, and who sent it."""
        state = current_state(self.kernel, self.db(), room_id, self.upto)
        invite = next((e for e in state if e.type == "m.room.member" and e.state_key == self.me), None)
        inviter = invite.sender if invite is not None else None
        return [
            {"type": e.type, "state_key": e.state_key, "content": e.content, "sender": e.sender}
            for e in state
            if e.type in STRIPPED_STATE_TYPES or (e.type == "m.room.member" and e.state_key in (self.me, inviter))
        ]

    def _ephemeral(self, room_id: str, items: list[Item], *, full: bool) -> list[dict[str, Any]]:
        ef = self.filter.room.ephemeral
        typing: list[tuple[str, int]] | None = None
        receipts: list[Any] = []
        if full:
            conn = self.db()
            ty, rc = t.typing, t.receipts
            typing = [
                (r.user_id, int(r.expires_at))
                for r in conn.execute(sa.select(ty.c.user_id, ty.c.expires_at).where(ty.c.room_id == room_id))
            ]
            receipts = list(conn.execute(sa.select(rc).where(rc.c.room_id == room_id, rc.c.stream_id <= self.upto)))
        else:
            for item in items:
                if item.typing is not None:
                    typing = item.typing
                elif item.receipt is not None:
                    receipts.append(item.receipt)
        out: list[dict[str, Any]] = []
        if typing is not None and ef.allows("m.typing"):
            users = sorted(u for u, expires in typing if expires > self.now)
            out.append({"type": "m.typing", "content": {"user_ids": users}})
        content: dict[str, dict[str, dict[str, Any]]] = {}
        for r in receipts:
            if r.receipt_type == "m.read.private" and r.user_id != self.me:
                continue  # private receipts are for their owner only
            entry: dict[str, Any] = {"ts": int(r.ts)}
            if r.thread_id:
                entry["thread_id"] = r.thread_id
            content.setdefault(r.event_id, {}).setdefault(r.receipt_type, {})[r.user_id] = entry
        if content and ef.allows("m.receipt"):
            out.append({"type": "m.receipt", "content": content})
        return out

    def _unread(
        self, room_id: str, events: list[StoredEvent], *, newly: bool, visibility: Visibility | None = None
    ) -> dict[str, int]:
        """Unread messages, counted on from the last answer in memory; from the database otherwise."""
        key = (room_id, self.me)
        cached = self.unread.get(key)
        count: int | None = None
        if not newly and cached is not None and cached[1] == self.since and not self._my_receipt_moved(room_id):
            count = cached[0]
            for e in events:
                if e.type in NOTIFYING_TYPES:
                    # One's own message marks the room read, as the database count does.
                    count = 0 if e.sender == self.me else count + 1
        if count is None:
            if visibility is None and not newly:
                # Counted from the database: hidden history must not be counted (a room never made
                # `invited`/`joined` costs one primary-key lookup, and only on this rare path).
                visibility = room_visibility(self.kernel, self.db(), room_id, self.me)
            count = count_unread(self.db(), room_id, self.me, cap=UNREAD_CAP, upto=self.upto, visibility=visibility)
        self.unread_updates[key] = (count, self.upto)
        return {"notification_count": count, "highlight_count": 0}

    def _my_receipt_moved(self, room_id: str) -> bool:
        return any(
            i.receipt is not None and i.receipt.user_id == self.me and i.receipt.receipt_type in READ_RECEIPTS
            for i in self.by_room.get(room_id, [])
        )

    # -- account data and devices --------------------------------------------------------------

    def _account_data(self, join: dict[str, Any]) -> list[dict[str, Any]]:
        """Global account data to send; per-room data goes into `join` (creating sections as needed)."""
        changed = self.since is None or TOPIC_ACCOUNT_DATA in self.account_topics
        if not changed and not self.newly_joined:
            return []
        data: dict[tuple[str, str], Any] = {}
        if changed:
            for room_id, data_type, content in account_data_rows(
                self.kernel, self.db(), self.me, self.since, self.upto
            ):
                data[(room_id, data_type)] = content
        if self.newly_joined:
            for room_id, data_type, content in account_data_rows(self.kernel, self.db(), self.me, None, self.upto):
                if room_id in self.newly_joined:
                    data[(room_id, data_type)] = content
        rf = self.filter.room
        global_data = []
        for (room_id, data_type), content in data.items():
            event = {"type": data_type, "content": content}
            if not room_id:
                if self.filter.account_data.allows(data_type):
                    global_data.append(event)
            elif (
                self.mem.get(room_id, ("", 0))[0] == Membership.JOIN
                and rf.allows_room(room_id)
                and rf.account_data.allows(data_type)
            ):
                join.setdefault(room_id, _empty_join_section(self.upto))["account_data"]["events"].append(event)
        return global_data

    def _device_parts(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        device_id = self.req.ctx.device_id
        if self.since is None or TOPIC_TO_DEVICE in self.account_topics:
            events, _reached = to_device_inbox(
                self.kernel, self.db(), self.me, device_id, self.since, self.upto, limit=10_000
            )
            if events:
                out["to_device"] = {"events": events}
                self.to_device_delivered = self.upto
        if self.changed_devices and self.since is not None:
            out["device_lists"] = {"changed": sorted(self.changed_devices), "left": []}
        if self.since is None or TOPIC_KEYS_CLAIMED in self.account_topics:
            out["device_one_time_keys_count"] = one_time_key_counts(self.db(), self.me, device_id)
            out["device_unused_fallback_key_types"] = unused_fallback_key_types(self.db(), self.me, device_id)
        return out


def _empty_join_section(upto: int) -> dict[str, Any]:
    return {
        "timeline": {"events": [], "limited": False, "prev_batch": stream_token(upto)},
        "state": {"events": []},
        "ephemeral": {"events": []},
        "account_data": {"events": []},
    }
