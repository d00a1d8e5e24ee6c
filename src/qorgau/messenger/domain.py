"""The messenger's rules, pure: identifiers, power levels, membership, presets, redaction, filters, tokens.

Nothing here does I/O, so the rules read like the Matrix specification (v1.11, room version 10) they
encode and are tested in microseconds. Services wrap them in transactions.
"""

from __future__ import annotations

import functools
import re
import secrets
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from qorgau.kernel.auth.roles import AGENCY_ROLES, Role
from qorgau.kernel.errors import Problem

ROOM_VERSION = "10"
SPEC_VERSIONS = ("r0.6.1", "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11")
MAX_EVENT_BYTES = 65_536
MAX_ID_LENGTH = 255
DEFAULT_TIMELINE_LIMIT = 50
MAX_TIMELINE_LIMIT = 1000
DEFAULT_MESSAGES_LIMIT = 10
MAX_TYPING_MS = 120_000
DEFAULT_TYPING_MS = 30_000

# Only officials of an agency use the messenger: the roles that belong to a state body.
MESSENGER_ROLES: frozenset[Role] = AGENCY_ROLES

# Events that count as unread for the badge: what a person wrote, not state or reactions.
NOTIFYING_TYPES = frozenset({"m.room.message", "m.room.encrypted", "m.sticker"})


class Membership(StrEnum):
    INVITE = "invite"
    JOIN = "join"
    LEAVE = "leave"
    BAN = "ban"
    KNOCK = "knock"


# --- errors -----------------------------------------------------------------------------------


def mx_error(errcode: str, message: str, status: int = 400, **extra: Any) -> Problem:
    """A failure with its Matrix error code; the transport answers `{"errcode", "error"}`."""
    return Problem(f"messenger.{errcode.lower()}", detail=message, status=status, extra={"errcode": errcode, **extra})


def forbidden(message: str) -> Problem:
    return mx_error("M_FORBIDDEN", message, 403)


def not_found(message: str) -> Problem:
    return mx_error("M_NOT_FOUND", message, 404)


def bad_json(message: str) -> Problem:
    return mx_error("M_BAD_JSON", message, 400)


def invalid_param(message: str) -> Problem:
    return mx_error("M_INVALID_PARAM", message, 400)


# --- identifiers ------------------------------------------------------------------------------

_LOCALPART_RE = re.compile(r"[a-z0-9._=/+-]+")
_LETTERS = string.ascii_lowercase


def user_id(username: str, server_name: str) -> str:
    """A Matrix user id for a local account: ``@username:server``."""
    return f"@{username}:{server_name}"


def localpart(mxid: str, server_name: str) -> str | None:
    """The username of a local user id, or None when it is malformed or names another server."""
    if not mxid.startswith("@") or len(mxid) > MAX_ID_LENGTH:
        return None
    local, sep, server = mxid[1:].partition(":")
    if not sep or server != server_name or not local or not _LOCALPART_RE.fullmatch(local):
        return None
    return local


def is_user_id(value: str) -> bool:
    return value.startswith("@") and ":" in value and len(value) <= MAX_ID_LENGTH


def is_room_id(value: str) -> bool:
    return value.startswith("!") and ":" in value and len(value) <= MAX_ID_LENGTH


def is_room_alias(value: str) -> bool:
    return value.startswith("#") and ":" in value and len(value) <= MAX_ID_LENGTH


def new_room_id(server_name: str) -> str:
    # Letters only: a random run of digits must never look like an IIN in the ledger.
    return "!" + "".join(secrets.choice(_LETTERS) for _ in range(18)) + ":" + server_name


def new_event_id() -> str:
    return "$" + secrets.token_urlsafe(24)


def new_device_id() -> str:
    return "".join(secrets.choice(string.ascii_uppercase) for _ in range(10))


def new_media_id() -> str:
    return secrets.token_urlsafe(18)


def alias_for(name: str, server_name: str) -> str:
    """The full alias for `room_alias_name`; rejects names a client could abuse."""
    if not name or len(name) > 100 or any(c in name for c in ":# \t\n") or not name.isprintable():
        raise mx_error("M_INVALID_PARAM", "room_alias_name may not contain ':', '#' or spaces")
    return f"#{name}:{server_name}"


# --- stream tokens ----------------------------------------------------------------------------


def stream_token(position: int) -> str:
    """A sync or pagination token: every stream position up to and including `position` is behind it."""
    return f"s{position}"


def parse_stream_token(token: str, name: str = "since") -> int:
    """The position of a token from :func:`stream_token`; M_INVALID_PARAM for anything else."""
    if not token.startswith("s") or not token[1:].isdigit() or len(token) > 20:
        raise invalid_param(f"'{name}' is not a valid token")
    return int(token[1:])


# --- power levels -----------------------------------------------------------------------------

DEFAULT_EVENT_LEVELS: dict[str, int] = {
    "m.room.name": 50,
    "m.room.power_levels": 100,
    "m.room.history_visibility": 100,
    "m.room.canonical_alias": 50,
    "m.room.avatar": 50,
    "m.room.tombstone": 100,
    "m.room.server_acl": 100,
    "m.room.encryption": 100,
}


def default_power_levels(creator: str, *, extra_admins: Iterable[str] = ()) -> dict[str, Any]:
    users = {creator: 100}
    for admin in extra_admins:
        users[admin] = 100
    return {
        "users": users,
        "users_default": 0,
        "events": dict(DEFAULT_EVENT_LEVELS),
        "events_default": 0,
        "state_default": 50,
        "ban": 50,
        "kick": 50,
        "redact": 50,
        "invite": 0,
        "notifications": {"room": 50},
    }


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return default


@dataclass(frozen=True)
class PowerLevels:
    """A room's ``m.room.power_levels`` content, read with the specification's defaults."""

    content: Mapping[str, Any] = field(default_factory=dict)

    def user_level(self, mxid: str) -> int:
        users = self.content.get("users")
        if isinstance(users, Mapping) and mxid in users:
            return _int(users[mxid], 0)
        return _int(self.content.get("users_default"), 0)

    def event_level(self, event_type: str, *, is_state: bool) -> int:
        events = self.content.get("events")
        if isinstance(events, Mapping) and event_type in events:
            return _int(events[event_type], 0)
        if is_state:
            return _int(self.content.get("state_default"), 50)
        return _int(self.content.get("events_default"), 0)

    def action_level(self, action: str) -> int:
        defaults = {"invite": 0, "kick": 50, "ban": 50, "redact": 50}
        return _int(self.content.get(action), defaults[action])

    def may_send(self, mxid: str, event_type: str, *, is_state: bool) -> bool:
        return self.user_level(mxid) >= self.event_level(event_type, is_state=is_state)

    def may(self, mxid: str, action: str) -> bool:
        return self.user_level(mxid) >= self.action_level(action)


def check_power_levels_change(old: PowerLevels, new: Mapping[str, Any], sender: str) -> str | None:
    """Why `sender` may not replace `old` with `new` (None: allowed), after the specification's rules."""
    for key in ("users_default", "events_default", "state_default", "ban", "kick", "redact", "invite"):
        value = new.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return f"'{key}' must be an integer"
    for key in ("users", "events"):
        value = new.get(key, {})
        if not isinstance(value, Mapping) or any(isinstance(v, bool) or not isinstance(v, int) for v in value.values()):
            return f"'{key}' must map names to integers"
    mine = old.user_level(sender)
    new_pl = PowerLevels(new)
    for key in ("users_default", "events_default", "state_default", "ban", "kick", "redact", "invite"):
        before = _int(old.content.get(key), -1) if key in old.content else None
        after = _int(new.get(key), -1) if key in new else None
        if before != after and max(before or 0, after or 0) > mine:
            return f"you may not change '{key}' beyond your own level"
    for user in set(_mapping(old.content.get("users"))) | set(_mapping(new.get("users"))):
        before = old.user_level(user) if user in _mapping(old.content.get("users")) else None
        after = new_pl.user_level(user) if user in _mapping(new.get("users")) else None
        if before == after:
            continue
        if user != sender and before is not None and before >= mine:
            return "you may not change the level of a user at or above your own"
        if after is not None and after > mine:
            return "you may not raise a user above your own level"
    for etype in set(_mapping(old.content.get("events"))) | set(_mapping(new.get("events"))):
        before = _mapping(old.content.get("events")).get(etype)
        after = _mapping(new.get("events")).get(etype)
        if before != after and max(_int(before, 0), _int(after, 0)) > mine:
            return f"you may not change the level of '{etype}' beyond your own"
    return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


# --- membership -------------------------------------------------------------------------------


def check_membership_change(
    *,
    action: str,
    sender: str,
    target: str,
    sender_membership: str | None,
    target_membership: str | None,
    join_rule: str,
    power: PowerLevels,
) -> str | None:
    """Why `sender` may not perform `action` (invite/join/leave/kick/ban/unban) on `target`; None: allowed."""
    if action == "join":
        if target != sender:
            return "you can only join for yourself"
        if target_membership == Membership.BAN:
            return "you are banned from this room"
        if target_membership in (Membership.JOIN, Membership.INVITE) or join_rule == "public":
            return None
        return "you are not invited to this room"
    if action == "leave":
        if target != sender:
            return "you can only leave for yourself"
        if target_membership in (Membership.JOIN, Membership.INVITE):
            return None
        return "you are not in this room"
    if sender_membership != Membership.JOIN:
        return "you are not in this room"
    if action == "invite":
        if target_membership == Membership.BAN:
            return "the user is banned from this room"
        if target_membership == Membership.JOIN:
            return "the user is already in the room"
        if not power.may(sender, "invite"):
            return "you do not have permission to invite"
        return None
    if action in ("kick", "ban", "unban"):
        needed = "ban" if action in ("ban", "unban") else "kick"
        if not power.may(sender, needed):
            return f"you do not have permission to {action}"
        if target != sender and power.user_level(target) >= power.user_level(sender):
            return f"you may not {action} a user at or above your own level"
        if action == "kick" and target_membership not in (Membership.JOIN, Membership.INVITE):
            return "the user is not in this room"
        if action == "unban" and target_membership != Membership.BAN:
            return "the user is not banned"
        return None
    return f"unknown membership action {action!r}"


MEMBERSHIP_RESULT = {
    "invite": Membership.INVITE,
    "join": Membership.JOIN,
    "leave": Membership.LEAVE,
    "kick": Membership.LEAVE,
    "ban": Membership.BAN,
    "unban": Membership.LEAVE,
}


# --- room presets -----------------------------------------------------------------------------

PRESETS = ("private_chat", "trusted_private_chat", "public_chat")


def preset_state(preset: str) -> list[tuple[str, dict[str, Any]]]:
    """The state events a preset implies: join rules, history visibility, guest access."""
    join_rule = "public" if preset == "public_chat" else "invite"
    return [
        ("m.room.join_rules", {"join_rule": join_rule}),
        ("m.room.history_visibility", {"history_visibility": "shared"}),
        ("m.room.guest_access", {"guest_access": "forbidden"}),
    ]


# --- history visibility -----------------------------------------------------------------------

HISTORY_VISIBILITY_VALUES = ("world_readable", "shared", "invited", "joined")
# Members see every event of these (there is no guest or peeking access: world_readable is shared).
OPEN_HISTORY = frozenset({"world_readable", "shared"})
DEFAULT_HISTORY_VISIBILITY = "shared"

# An inclusive range of stream ids, open-ended when its end is None.
StreamRange = tuple[int, int | None]


def check_history_visibility(content: Mapping[str, Any]) -> None:
    """M_BAD_JSON unless `content` sets one of the four values of the specification."""
    value = content.get("history_visibility")
    if value not in HISTORY_VISIBILITY_VALUES:
        allowed = ", ".join(HISTORY_VISIBILITY_VALUES)
        raise bad_json(f"history_visibility must be one of: {allowed}")


def _visible_under(setting: str, membership: str | None) -> bool:
    if setting == "joined":
        return membership == Membership.JOIN
    if setting == "invited":
        return membership in (Membership.JOIN, Membership.INVITE)
    return True  # shared, world_readable, and values written before they were checked


def hidden_ranges(
    settings: Iterable[tuple[int, str]], memberships: Iterable[tuple[int, str | None]]
) -> tuple[StreamRange, ...]:
    """The stream ranges of a room a user may not read, from the room's history visibility changes and
    the user's membership events, each (stream id, value) in stream order.

    An event is judged by the setting in force at it (the latest change at or before it) and the
    user's membership at it (their latest membership event at or before it, so their own join is
    visible to them). Before any setting the room is `shared`, the specification's default.
    """
    changes = sorted([(s, 0, v) for s, v in settings] + [(s, 1, m) for s, m in memberships])
    setting, membership = DEFAULT_HISTORY_VISIBILITY, None
    hidden: list[list[int | None]] = []
    for i, (start, kind, value) in enumerate(changes):
        if kind == 0:
            setting = value or DEFAULT_HISTORY_VISIBILITY
        else:
            membership = value
        nxt = changes[i + 1][0] if i + 1 < len(changes) else None
        if nxt == start:
            continue  # a second change at the same position: judge the segment after both
        end = nxt - 1 if nxt is not None else None
        if _visible_under(setting, membership):
            continue
        if hidden and hidden[-1][1] is not None and hidden[-1][1] + 1 >= start:
            hidden[-1][1] = end
        else:
            hidden.append([start, end])
    return tuple((int(lo or 0), hi) for lo, hi in hidden)


# --- redaction (room version 10) --------------------------------------------------------------

_KEEP_CONTENT: dict[str, tuple[str, ...]] = {
    "m.room.member": ("membership", "join_authorised_via_users_server"),
    "m.room.create": ("creator",),
    "m.room.join_rules": ("join_rule", "allow"),
    "m.room.power_levels": (
        "ban",
        "events",
        "events_default",
        "kick",
        "redact",
        "state_default",
        "users",
        "users_default",
    ),
    "m.room.history_visibility": ("history_visibility",),
    "m.room.redaction": ("redacts",),
}


def redact_content(event_type: str, content: Mapping[str, Any]) -> dict[str, Any]:
    """What remains of an event's content after redaction: only the keys the room version keeps."""
    keep = _KEEP_CONTENT.get(event_type, ())
    return {k: content[k] for k in keep if k in content}


# --- events -----------------------------------------------------------------------------------


def check_event_type(event_type: str) -> None:
    if not event_type or len(event_type) > MAX_ID_LENGTH or not event_type.isprintable():
        raise invalid_param("invalid event type")


def check_content_size(body: bytes) -> None:
    if len(body) > MAX_EVENT_BYTES:
        raise mx_error("M_TOO_LARGE", "event content is too large", 413)


# --- filters ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def _glob(pattern: str) -> re.Pattern[str]:
    # Matrix filters know one wildcard, `*`; everything else matches literally.
    return re.compile(re.escape(pattern).replace(r"\*", ".*") + r"\Z", re.DOTALL)


def _matches_any(value: str, patterns: tuple[str, ...]) -> bool:
    return any(value == p or ("*" in p and _glob(p).match(value)) for p in patterns)


def _str_tuple(raw: Any, name: str) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise bad_json(f"filter field '{name}' must be a list of strings")
    return tuple(raw)


@dataclass(frozen=True)
class EventFilter:
    """A Matrix (room) event filter: types, senders, rooms (with `*` wildcards in types) and a limit."""

    limit: int | None = None
    types: tuple[str, ...] | None = None
    not_types: tuple[str, ...] = ()
    senders: tuple[str, ...] | None = None
    not_senders: tuple[str, ...] = ()
    rooms: tuple[str, ...] | None = None
    not_rooms: tuple[str, ...] = ()
    contains_url: bool | None = None

    @classmethod
    def parse(cls, raw: Any, name: str = "filter") -> EventFilter:
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise bad_json(f"'{name}' must be an object")
        limit = raw.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise bad_json(f"'{name}.limit' must be a non-negative integer")
        contains_url = raw.get("contains_url")
        if contains_url is not None and not isinstance(contains_url, bool):
            raise bad_json(f"'{name}.contains_url' must be a boolean")
        return cls(
            limit=min(limit, MAX_TIMELINE_LIMIT) if limit is not None else None,
            types=_str_tuple(raw.get("types"), "types"),
            not_types=_str_tuple(raw.get("not_types"), "not_types") or (),
            senders=_str_tuple(raw.get("senders"), "senders"),
            not_senders=_str_tuple(raw.get("not_senders"), "not_senders") or (),
            rooms=_str_tuple(raw.get("rooms"), "rooms"),
            not_rooms=_str_tuple(raw.get("not_rooms"), "not_rooms") or (),
            contains_url=contains_url,
        )

    @property
    def passes_everything(self) -> bool:
        return (
            self.types is None
            and not self.not_types
            and self.senders is None
            and not self.not_senders
            and self.rooms is None
            and not self.not_rooms
            and self.contains_url is None
        )

    def allows_room(self, room_id: str) -> bool:
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms

    def allows(self, event_type: str, sender: str | None = None, content: Mapping[str, Any] | None = None) -> bool:
        if self.not_types and _matches_any(event_type, self.not_types):
            return False
        if self.types is not None and not _matches_any(event_type, self.types):
            return False
        if sender is not None:
            if sender in self.not_senders:
                return False
            if self.senders is not None and sender not in self.senders:
                return False
        if self.contains_url is not None and content is not None:
            has_url = isinstance(content.get("url"), str)
            if has_url != self.contains_url:
                return False
        return True


@dataclass(frozen=True)
class RoomFilter:
    rooms: tuple[str, ...] | None = None
    not_rooms: tuple[str, ...] = ()
    timeline: EventFilter = EventFilter()
    state: EventFilter = EventFilter()
    ephemeral: EventFilter = EventFilter()
    account_data: EventFilter = EventFilter()
    include_leave: bool = False

    def allows_room(self, room_id: str) -> bool:
        if room_id in self.not_rooms:
            return False
        return self.rooms is None or room_id in self.rooms


@dataclass(frozen=True)
class SyncFilter:
    """A whole /sync filter (inline JSON or stored with POST /user/{id}/filter)."""

    room: RoomFilter = RoomFilter()
    account_data: EventFilter = EventFilter()
    presence: EventFilter = EventFilter()

    @classmethod
    def parse(cls, raw: Any) -> SyncFilter:
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise bad_json("a filter must be a JSON object")
        room_raw = raw.get("room") or {}
        if not isinstance(room_raw, Mapping):
            raise bad_json("'room' must be an object")
        include_leave = room_raw.get("include_leave", False)
        if not isinstance(include_leave, bool):
            raise bad_json("'room.include_leave' must be a boolean")
        room = RoomFilter(
            rooms=_str_tuple(room_raw.get("rooms"), "room.rooms"),
            not_rooms=_str_tuple(room_raw.get("not_rooms"), "room.not_rooms") or (),
            timeline=EventFilter.parse(room_raw.get("timeline"), "room.timeline"),
            state=EventFilter.parse(room_raw.get("state"), "room.state"),
            ephemeral=EventFilter.parse(room_raw.get("ephemeral"), "room.ephemeral"),
            account_data=EventFilter.parse(room_raw.get("account_data"), "room.account_data"),
            include_leave=include_leave,
        )
        return cls(
            room=room,
            account_data=EventFilter.parse(raw.get("account_data"), "account_data"),
            presence=EventFilter.parse(raw.get("presence"), "presence"),
        )

    @property
    def timeline_limit(self) -> int:
        limit = self.room.timeline.limit
        return DEFAULT_TIMELINE_LIMIT if limit is None else limit


# --- ДСП ("For official use only") ----------------------------------------------------------------
#
# A room is ДСП when created with the marking: a `kz.qorgau.dsp` state event {"dsp": true} in
# initial_state, or `"kz.qorgau.dsp": true` in creation_content. The marking is fixed at creation.
# A ДСП room's members all belong to the creator's agency. A message is ДСП when it is sent in a ДСП
# room or carries `"kz.qorgau.dsp": true`; such content must stay in ДСП rooms, so a marked message
# in an unmarked room is refused rather than silently accepted. A message carrying
# `"kz.qorgau.forwarded_from": {"room_id", "event_id"}` that references ДСП content may only go to a
# ДСП room whose members all belong to the sender's agency.

DSP_STATE = "kz.qorgau.dsp"
DSP_KEY = "kz.qorgau.dsp"
FORWARDED_KEY = "kz.qorgau.forwarded_from"


def room_marked_dsp(initial_state: Iterable[Mapping[str, Any]], creation_content: Mapping[str, Any] | None) -> bool:
    """Whether a room about to be created carries the ДСП marking."""
    if creation_content and creation_content.get(DSP_KEY) is True:
        return True
    return any(
        item.get("type") == DSP_STATE
        and item.get("state_key", "") == ""
        and isinstance(item.get("content"), Mapping)
        and item["content"].get("dsp") is True
        for item in initial_state
    )


def content_marked_dsp(content: Mapping[str, Any]) -> bool:
    return content.get(DSP_KEY) is True


def forwarded_from(content: Mapping[str, Any]) -> tuple[str, str] | None:
    """The (room id, event id) a message says it forwards; None when it forwards nothing."""
    ref = content.get(FORWARDED_KEY)
    if ref is None:
        return None
    if not isinstance(ref, Mapping) or not all(isinstance(ref.get(k), str) for k in ("room_id", "event_id")):
        raise bad_json(f"'{FORWARDED_KEY}' must be an object with string 'room_id' and 'event_id'")
    return ref["room_id"], ref["event_id"]


def check_dsp_member(
    *, room_dsp: bool, room_agency: str | None, member_agency: str | None, agency_name: str | None = None
) -> str | None:
    """Why an official of `member_agency` may not be invited to (or join) a room; None: allowed.

    `agency_name` names the room's agency in the error (its code); the id otherwise.
    """
    if room_dsp and (room_agency is None or member_agency != room_agency):
        return f"ДСП room: members must belong to {agency_name or room_agency or 'one agency'}"
    return None


def check_dsp_message(*, room_dsp: bool, content: Mapping[str, Any]) -> str | None:
    """Why a message may not be sent in a room for its marking; None: allowed."""
    if content_marked_dsp(content) and not room_dsp:
        return "ДСП content must stay in ДСП rooms: this room is not marked ДСП"
    return None


def check_dsp_forward(
    *, source_dsp: bool, target_dsp: bool, sender_agency: str | None, member_agencies: Iterable[str | None]
) -> str | None:
    """Why ДСП content may not be forwarded to a room; None: allowed (or the source is not ДСП)."""
    if not source_dsp:
        return None
    if not target_dsp:
        return "ДСП content cannot be forwarded to a room that is not marked ДСП"
    if sender_agency is None or any(a != sender_agency for a in member_agencies):
        return "ДСП content cannot be forwarded to a room with members from outside your agency"
    return None


def dsp_view_is_ledgered(actor: Any) -> bool:
    """Every view of ДСП content by a security officer is written to the ledger."""
    return actor is not None and actor.role == Role.SECURITY_OFFICER


def may_export_dsp(actor: Any, agency_id: str | None = None) -> bool:
    """Whether an export may include ДСП content: only a security officer or agency admin of the agency.

    `agency_id` is the agency whose content is exported (the room's); given, the actor must belong to it.
    """
    if actor is None or actor.role not in (Role.SECURITY_OFFICER, Role.AGENCY_ADMIN) or actor.agency_id is None:
        return False
    return agency_id is None or actor.agency_id == agency_id
