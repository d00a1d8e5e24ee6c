"""What every use case of the reports service shares: ids, routing, keys, scopes, notices, limits."""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from qorgau.kernel.auth import services as auth
from qorgau.kernel.auth.policy import can
from qorgau.kernel.auth.roles import Actor, AgencyKind, Role
from qorgau.kernel.auth.throttle import ClientThrottle
from qorgau.kernel.context import Ctx, Kernel
from qorgau.kernel.db import Tx, utc_now_ms
from qorgau.kernel.errors import Problem
from qorgau.kernel.events import emit
from qorgau.reports import catalog, protection
from qorgau.reports import tables as t
from qorgau.reports.domain import Deadlines, Status, WorkflowError, WorkflowRole
from qorgau.reports.media import MediaError
from qorgau.reports.rules import UnitScope

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REF_LENGTH = 10


def new_id() -> str:
    return uuid.uuid4().hex


def new_ref() -> str:
    """A random reference like ``K7M2Q-9XAB4`` (50 bits): quoted by people, never guessed in order."""
    raw = "".join(secrets.choice(_CROCKFORD) for _ in range(REF_LENGTH))
    return f"{raw[:5]}-{raw[5:]}"


def problem_of(exc: WorkflowError | MediaError) -> Problem:
    if isinstance(exc, MediaError):
        return Problem(exc.code, field="files")
    return Problem(exc.code, field=exc.field)


def deadlines(kernel: Kernel) -> Deadlines:
    s = kernel.settings
    return Deadlines.in_days(s.reports_triage_days, s.reports_decision_days)


def reporter_ref(kernel: Kernel, user_id: str) -> str:
    """How a named reporter's reports are found: a keyed hash of the account, not the account id."""
    return kernel.hasher.hash("reports.reporter", user_id)


# --- routing and unit keys ------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    unit_id: str
    by_fallback: bool


def route(kernel: Kernel, region_code: str, category_code: str) -> Route:
    """The police unit responsible for a report, by the routing data file.

    A region whose unit is not set up in this deployment goes to the fallback unit (the setting, or the
    data file's), flagged so that unit forwards it once the right unit exists.
    """
    table = catalog.routing(kernel.settings.reports_routing_file)
    named = table.unit_for(region_code, category_code)
    if named:
        unit = auth.get_agency(kernel, named)
        if unit is not None and unit.kind == AgencyKind.POLICE_UNIT:
            return Route(unit.id, False)
    fallback = auth.get_agency(kernel, kernel.settings.reports_fallback_unit or table.fallback_unit)
    if fallback is None or fallback.kind != AgencyKind.POLICE_UNIT:
        raise Problem("reports.no_unit")
    return Route(fallback.id, True)


def unit_public_key(kernel: Kernel, unit_id: str) -> bytes:
    """The unit's public key, creating the unit's key pair the first time a report goes to it."""
    with kernel.db.read() as conn:
        found = conn.execute(
            sa.select(t.report_unit_keys.c.public_key).where(t.report_unit_keys.c.agency_id == unit_id)
        ).scalar()
    if found is not None:
        return bytes(found)
    public, wrapped = protection.new_unit_key(kernel.keyring, unit_id)

    def write(tx: Tx) -> None:
        tx.execute(
            t.report_unit_keys.insert().values(
                agency_id=unit_id, public_key=public, private_key_enc=wrapped, created_at=utc_now_ms()
            )
        )
        kernel.ledger.append(
            tx,
            entry_type="decision",
            actor="platform",
            action="report.unit_key_create",
            subject=None,
            obj={"unit": unit_id},
        )

    with contextlib.suppress(IntegrityError):  # another request created it first: use theirs
        kernel.db.run(write)
    with kernel.db.read() as conn:
        return bytes(
            conn.execute(
                sa.select(t.report_unit_keys.c.public_key).where(t.report_unit_keys.c.agency_id == unit_id)
            ).scalar_one()
        )


def report_key(kernel: Kernel, conn: Connection | Tx, row: Any) -> bytes:
    """Open a report's data key with its unit's private key; call only once the actor is authorised."""
    wrapped = conn.execute(
        sa.select(t.report_unit_keys.c.private_key_enc).where(t.report_unit_keys.c.agency_id == row.unit_id)
    ).scalar_one()
    private = protection.unwrap_unit_key(kernel.keyring, row.unit_id, wrapped)
    return protection.open_report_key(private, row.id, row.data_key_sealed)


def load_report(conn: Connection | Tx, report_id: str) -> Any:
    row = conn.execute(sa.select(t.reports).where(t.reports.c.id == report_id)).first() if report_id else None
    if row is None:
        raise Problem("http.not_found")
    return row


# --- staff ------------------------------------------------------------------------------------


def history_of(conn: Connection | Tx, report_id: str) -> list[Any]:
    """A report's history rows, oldest first (notes still sealed)."""
    return list(
        conn.execute(
            sa.select(t.report_history)
            .where(t.report_history.c.report_id == report_id)
            .order_by(t.report_history.c.at, t.report_history.c.id)
        ).all()
    )


def unit_scope(kernel: Kernel, unit_id: str | None, requested_by: str | None = None) -> UnitScope:
    unit = auth.get_agency(kernel, unit_id) if unit_id else None
    return UnitScope(unit.id if unit else None, unit.kind.value if unit else None, requested_by)


def workflow_role(actor: Actor) -> WorkflowRole:
    return WorkflowRole.SUPERVISOR if actor.role == Role.AGENCY_ADMIN else WorkflowRole.OFFICER


def staff_of_report(ctx: Ctx, row: Any, action: str = "reports.view") -> Actor:
    """The actor, if they are staff of the report's unit; others learn nothing, not even that it exists."""
    if ctx.actor is None:
        raise Problem("auth.required")
    if not can(ctx.actor, action, unit_scope(ctx.kernel, row.unit_id)):
        if can(ctx.actor, "reports.queue", unit_scope(ctx.kernel, ctx.actor.agency_id)):
            raise Problem("http.not_found")
        raise Problem("auth.forbidden")
    return ctx.actor


def staff_ref(kernel: Kernel, actor: Actor) -> str:
    return kernel.actor_ref(actor)


# --- notices to a named reporter ---------------------------------------------------------------


def notify(tx: Tx, row: Any, kind: str, status: Status | None = None) -> None:
    """Tell a named reporter (in their account) that something happened; anonymous reports have no one."""
    if not row.reporter_ref:
        return
    tx.execute(
        t.report_notifications.insert().values(
            id=new_id(),
            reporter_ref=row.reporter_ref,
            report_id=row.id,
            kind=kind,
            status=status.value if status else None,
            created_at=utc_now_ms(),
        )
    )
    emit(tx, "reports.notification", {"report": row.id})


# --- abuse limits: in memory only, under a keyed hash of the client address rotated daily --------


class _Window:
    """At most `limit` events per key in the last `seconds` (a sliding window, in memory)."""

    def __init__(self, limit: int, seconds: float, capacity: int = 100_000) -> None:
        self.limit = limit
        self.seconds = seconds
        self.capacity = capacity
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= self.capacity:
                    self._hits.clear()
                hits = self._hits[key] = deque()
            while hits and now - hits[0] > self.seconds:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True


@dataclass
class _Limits:
    day: str
    receipts: ClientThrottle
    submissions: _Window


_limits_lock = threading.Lock()


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


def limits(kernel: Kernel) -> _Limits:
    """Today's counters; a new day starts from empty ones, so nothing about a client outlives a day."""
    day = _today()
    with _limits_lock:
        current: _Limits | None = kernel.extras.get("reports.limits")
        if current is None or current.day != day:
            s = kernel.settings
            current = _Limits(
                day,
                ClientThrottle(s.reports_receipt_max_failures, s.reports_receipt_lockout_seconds, 3600),
                _Window(s.reports_submissions_per_hour, 3600),
            )
            kernel.extras["reports.limits"] = current
        return current


def client_key(kernel: Kernel, address: str | None) -> str:
    """A keyed hash of the client's address under a key that changes every day (UTC)."""
    return kernel.hasher.hash(f"reports.client.{_today()}", address or "-")
