"""The onboarding dashboard: which officials of an agency have joined the messenger, when they were last
active, and who is still missing as the transition deadline (`messenger_transition_deadline`) nears.

Read-only. "Joined" is the kernel's `users.joined_at` (an invitation used, or an account created with
a password); invitation states come from `kernel.auth.invites`. Last activity is the latest of a web
sign-in (session opened, `last_login_at`) and a Matrix client's activity (`messenger_devices.last_seen_at`).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from qorgau.kernel import i18n
from qorgau.kernel.auth import tables as kt
from qorgau.kernel.auth.invites import InviteState, invite_statuses
from qorgau.kernel.auth.policy import require, rule
from qorgau.kernel.auth.roles import AGENCY_ROLES, ROLE_LABELS, Actor, Role
from qorgau.kernel.context import Ctx, Kernel
from qorgau.kernel.errors import Problem
from qorgau.kernel.i18n import N_
from qorgau.messenger import tables as mt

# Officials not yet joined are flagged "deadline near" this many days before the deadline.
NEAR_DAYS = 14


@rule("messenger.onboarding.view")
def _may_view(actor: Actor | None, agency_id: Any) -> bool:
    """Platform admins see every agency; an agency admin sees their own agency only."""
    if actor is None:
        return False
    if actor.role == Role.PLATFORM_ADMIN:
        return True
    return actor.role == Role.AGENCY_ADMIN and actor.agency_id is not None and agency_id in (None, actor.agency_id)


class Status(StrEnum):
    NOT_INVITED = "not_invited"
    EXPIRED = "expired"  # invited, but the link ran out
    PENDING = "pending"  # invited, the link can still be used
    JOINED = "joined"


STATUS_LABELS: dict[Status, str] = {
    Status.NOT_INVITED: N_("Not invited"),
    Status.EXPIRED: N_("Invited, link expired"),
    Status.PENDING: N_("Invited, link pending"),
    Status.JOINED: N_("Joined"),
}
# Missing first, and among the missing those an admin has to act on first.
_ORDER = {Status.NOT_INVITED: 0, Status.EXPIRED: 1, Status.PENDING: 2, Status.JOINED: 3}
_FROM_INVITE = {
    InviteState.NONE: Status.NOT_INVITED,
    InviteState.EXPIRED: Status.EXPIRED,
    InviteState.PENDING: Status.PENDING,
    InviteState.JOINED: Status.JOINED,
}


class Flag(StrEnum):
    OVERDUE = "overdue"  # not joined and the deadline has passed
    NEAR = "near"  # not joined and the deadline is within NEAR_DAYS


FLAG_LABELS: dict[Flag, str] = {
    Flag.OVERDUE: N_("Not joined — deadline passed"),
    Flag.NEAR: N_("Not joined — deadline near"),
}
FILTERS = ("all", "missing", *(s.value for s in Status))


@dataclass(frozen=True)
class OfficialRow:
    user_id: str
    username: str
    display_name: str
    role: Role
    agency_id: str
    status: Status
    invited_at: int | None
    link_expires_at: int | None
    joined_at: int | None
    last_active_at: int | None
    flag: Flag | None

    @property
    def missing(self) -> bool:
        return self.status != Status.JOINED


@dataclass(frozen=True)
class Summary:
    total: int
    joined: int
    pending: int
    expired: int
    not_invited: int
    deadline: date
    days_left: int  # negative once the deadline has passed

    @property
    def missing(self) -> int:
        return self.total - self.joined

    @property
    def percent(self) -> int:
        return 100 if self.total == 0 else (100 * self.joined) // self.total


@dataclass(frozen=True)
class Onboarding:
    agency_id: str | None  # None: every agency (platform admin)
    summary: Summary  # over the whole scope, before the status filter
    officials: list[OfficialRow]  # filtered and sorted, missing first


def transition_deadline(kernel: Kernel) -> date:
    return date.fromisoformat(kernel.settings.messenger_transition_deadline)


def local_today() -> date:
    return datetime.now(tz=ZoneInfo(i18n.DISPLAY_TIME_ZONE)).date()


def _last_activity(conn: Any, officials: Any) -> dict[str, int]:
    """Latest web sign-in (open session) or Matrix client activity of each account matching `officials`."""
    found: dict[str, int] = {}
    u, s, d = kt.users, kt.sessions, mt.devices
    queries = [
        sa.select(s.c.user_id, sa.func.max(s.c.created_at))
        .join(u, u.c.id == s.c.user_id)
        .where(officials)
        .group_by(s.c.user_id),
        sa.select(d.c.account_id, sa.func.max(d.c.last_seen_at))
        .join(u, u.c.id == d.c.account_id)
        .where(officials)
        .group_by(d.c.account_id),
    ]
    for query in queries:
        for user_id, when in conn.execute(query).all():
            if when is not None and when > found.get(user_id, 0):
                found[user_id] = when
    return found


def _flag(status: Status, days_left: int) -> Flag | None:
    if status == Status.JOINED:
        return None
    if days_left < 0:
        return Flag.OVERDUE
    if days_left <= NEAR_DAYS:
        return Flag.NEAR
    return None


def onboarding(ctx: Ctx, *, agency_id: str | None = None, status: str = "all", today: date | None = None) -> Onboarding:
    """The dashboard for the actor: their own agency (agency admin) or any/all agencies (platform admin)."""
    actor = require(ctx.actor, "messenger.onboarding.view", agency_id or None)
    if actor.role != Role.PLATFORM_ADMIN:
        agency_id = actor.agency_id
    if status not in FILTERS:
        raise Problem("validation.parameter", field="status", detail=f"one of {', '.join(FILTERS)}")
    kernel = ctx.kernel
    today = today or local_today()
    deadline = transition_deadline(kernel)
    days_left = (deadline - today).days
    u = kt.users
    officials = sa.and_(u.c.role.in_([r.value for r in AGENCY_ROLES]), u.c.disabled == sa.false())
    if agency_id:
        officials = sa.and_(officials, u.c.agency_id == agency_id)
    # A fixed number of queries whatever the agency's size (no IN list of every official).
    with kernel.db.read() as conn:
        users = conn.execute(sa.select(u).where(officials)).all()
        activity = _last_activity(conn, officials)
    invites = invite_statuses(kernel, agency_id=agency_id or None, agency_accounts=True)
    rows: list[OfficialRow] = []
    for r in users:
        inv = invites.get(r.id)
        st = _FROM_INVITE[inv.state] if inv else Status.NOT_INVITED
        last = max(filter(None, (activity.get(r.id), r.last_login_at)), default=None)
        rows.append(
            OfficialRow(
                user_id=r.id,
                username=r.username,
                display_name=r.display_name,
                role=Role(r.role),
                agency_id=r.agency_id,
                status=st,
                invited_at=inv.invited_at if inv else None,
                link_expires_at=inv.expires_at if inv and st != Status.JOINED else None,
                joined_at=r.joined_at,
                last_active_at=last,
                flag=_flag(st, days_left),
            )
        )
    counts = {s: sum(1 for row in rows if row.status == s) for s in Status}
    summary = Summary(
        total=len(rows),
        joined=counts[Status.JOINED],
        pending=counts[Status.PENDING],
        expired=counts[Status.EXPIRED],
        not_invited=counts[Status.NOT_INVITED],
        deadline=deadline,
        days_left=days_left,
    )
    if status == "missing":
        rows = [row for row in rows if row.missing]
    elif status != "all":
        rows = [row for row in rows if row.status == status]
    rows.sort(key=lambda row: (_ORDER[row.status], row.display_name.casefold(), row.username))
    return Onboarding(agency_id=agency_id or None, summary=summary, officials=rows)


def missing_officials(ctx: Ctx) -> list[str]:
    """User ids of the officials in the actor's scope who have not joined yet (for a reminder notice)."""
    return [row.user_id for row in onboarding(ctx, status="missing").officials]


# --- CSV export -------------------------------------------------------------------------------

CSV_COLUMNS = (
    N_("Name"),
    N_("Username"),
    N_("Role"),
    N_("Agency"),
    N_("Status"),
    N_("Invited at"),
    N_("Link valid until"),
    N_("Joined at"),
    N_("Last active"),
    N_("Deadline"),
)


def _cell(text: str) -> str:
    # A cell starting with = + - @ would be run as a formula by spreadsheets (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _when(ms: int | None) -> str:
    if ms is None:
        return ""
    local = datetime.fromtimestamp(ms / 1000, tz=UTC).astimezone(ZoneInfo(i18n.DISPLAY_TIME_ZONE))
    return local.strftime("%Y-%m-%d %H:%M")


def to_csv(data: Onboarding, *, lang: str, agency_names: dict[str, str]) -> bytes:
    """The table as CSV in the reader's language: UTF-8 with a BOM (so Excel reads Cyrillic), CRLF lines."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([i18n.gettext(lang, c) for c in CSV_COLUMNS])
    for row in data.officials:
        writer.writerow(
            [
                _cell(row.display_name),
                _cell(row.username),
                i18n.gettext(lang, ROLE_LABELS[row.role]),
                _cell(agency_names.get(row.agency_id, "")),
                i18n.gettext(lang, STATUS_LABELS[row.status]),
                _when(row.invited_at),
                _when(row.link_expires_at),
                _when(row.joined_at),
                _when(row.last_active_at),
                i18n.gettext(lang, FLAG_LABELS[row.flag]) if row.flag else "",
            ]
        )
    return ("\ufeff" + out.getvalue()).encode("utf-8")
