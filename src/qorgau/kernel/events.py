"""The event stream: an outbox table written in the same transaction as the state change.

A service that changes state calls :func:`emit` inside its write transaction. The row gets a stream id
that only ever grows; once the transaction has committed, the id (and nothing else) is published on the
process's bus (see :mod:`qorgau.kernel.realtime`), which wakes subscribers. Subscribers then read what
they need with :func:`read_events`, resuming after the last stream id they saw, so a lost wake-up
delays a message but never loses it.

Payloads are JSON and carry identifiers only, never personal data: the event stream is read by many
subscribers and kept longer than the data it points to.

Readers in the same process need not always read back what it has just written: every committed emit
is also kept, with whatever its service attached (:func:`attach`), in the database's
:class:`StreamJournal`; a reader whose whole range was committed here takes it from there.

Commit order equals stream-id order. SQLite serialises writers (``BEGIN IMMEDIATE``), so this holds by
construction. On PostgreSQL, ids come from a sequence and two transactions may commit in the opposite
order of their ids, which would let a reader resuming "after 7" skip id 6 committed a moment later;
:func:`emit` therefore takes a transaction-scoped advisory lock before its first insert, so transactions
that emit events commit one after the other (group commit keeps that cheap on hot paths).
"""

from __future__ import annotations

import json
import threading
import weakref
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from qorgau.kernel.db import Database, Prebuilt, Tx, metadata, utc_now_ms

__all__ = [
    "EVENTS_ADVISORY_LOCK",
    "TOPIC_MAX_LENGTH",
    "Emitted",
    "Event",
    "Publisher",
    "StreamJournal",
    "attach",
    "emit",
    "events_table",
    "get_bus",
    "latest_stream_id",
    "read_events",
    "set_bus",
    "stream_journal",
]

TOPIC_MAX_LENGTH = 64

# Key of the PostgreSQL advisory lock that orders event-emitting transactions ("qorgauev" in ASCII).
EVENTS_ADVISORY_LOCK = 0x716F7267_61756576

_TX_LOCKED = "qorgau.events.locked"
_TX_EMITTED = "qorgau.events.emitted"

events_table = sa.Table(
    "events",
    metadata,
    sa.Column(
        "stream_id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    sa.Column("topic", sa.String(TOPIC_MAX_LENGTH), nullable=False),
    sa.Column("payload", sa.Text, nullable=False, default="{}"),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    # (topic, stream_id) serves both "by topic" lookups and "topics T after id N, oldest first".
    sa.Index("ix_events_topic_stream_id", "topic", "stream_id"),
    # AUTOINCREMENT: SQLite never reuses an id, even after the newest rows are pruned.
    sqlite_autoincrement=True,
)


@dataclass(frozen=True)
class Event:
    """One row of the event stream."""

    stream_id: int
    topic: str
    payload: dict[str, Any] = field(hash=False)
    created_at: int


class Publisher(Protocol):
    """What :func:`emit` needs from a bus: a way to announce a committed stream id."""

    def publish(self, stream_id: int) -> None:
        """Announce that `stream_id` is committed; must not raise."""
        ...


_bus: Publisher | None = None
_bus_lock = threading.Lock()


def set_bus(bus: Publisher | None) -> Publisher | None:
    """Install the process's bus (``None`` to remove it); returns the previous one."""
    global _bus
    with _bus_lock:
        previous, _bus = _bus, bus
    return previous


def get_bus() -> Publisher | None:
    """The process's bus, or ``None`` when the app has not installed one."""
    return _bus


def _publish(stream_id: int) -> None:
    bus = _bus
    if bus is not None:
        bus.publish(stream_id)


# Every message sent goes through here: compiled once and run on the driver's cursor (see Prebuilt).
_INSERT = Prebuilt(
    events_table.insert()
    .values(topic=sa.bindparam("topic"), payload=sa.bindparam("payload"), created_at=sa.bindparam("created_at"))
    .returning(events_table.c.stream_id)
)


@dataclass(slots=True)
class Emitted:
    """One committed emit as this process saw it: its id, topic, payload and what its service attached."""

    stream_id: int
    topic: str
    payload: dict[str, Any]
    local: Any = None


class StreamJournal:
    """The stream ids this process committed lately, each with what its emit carried.

    Written by the committing thread (after commit, before the id is published), read by in-process
    readers: :meth:`span` answers only when every id of a range was committed here, so anything written
    by another process (or lost to a rolled-back PostgreSQL sequence value) sends the reader to the
    database as before. Bounded: the oldest ids are forgotten first. A reader needs only the ids between
    its last read and the newest commit, a few dozen under load; what the journal holds (a message's
    content, for the messenger) stays in memory until it is forgotten, so it is kept short.
    """

    def __init__(self, size: int = 4_096) -> None:
        self.size = size
        self._records: dict[int, Emitted] = {}
        self._order: deque[int] = deque()

    def add(self, record: Emitted) -> None:
        self._records[record.stream_id] = record
        self._order.append(record.stream_id)
        while len(self._order) > self.size:
            self._records.pop(self._order.popleft(), None)

    def span(self, after: int, upto: int) -> list[Emitted] | None:
        """The records of every id in (after, upto], in order; None unless each of them is here."""
        if upto - after > len(self._records):
            return None
        records = self._records
        out = []
        for stream_id in range(after + 1, upto + 1):
            record = records.get(stream_id)
            if record is None:
                return None
            out.append(record)
        return out


_journals: weakref.WeakKeyDictionary[Database, StreamJournal] = weakref.WeakKeyDictionary()
_journals_lock = threading.Lock()


def stream_journal(db: Database) -> StreamJournal:
    """The journal of what this process committed to `db`."""
    journal = _journals.get(db)
    if journal is None:
        with _journals_lock:
            journal = _journals.setdefault(db, StreamJournal())
    return journal


def _committed(journal: StreamJournal | None, record: Emitted) -> None:
    if journal is not None:
        journal.add(record)  # before publishing: a reader woken by the id finds it here
    _publish(record.stream_id)


def attach(tx: Tx, stream_id: int, local: Any) -> None:
    """Attach `local` (never persisted) to `stream_id`, emitted in `tx`, for in-process readers."""
    tx.info[_TX_EMITTED][stream_id].local = local


_encode_sorted = msgspec.json.Encoder(order="sorted").encode


def emit(tx: Tx, topic: str, payload: Mapping[str, Any] | None = None) -> int:
    """Append an event in the caller's transaction and return its stream id.

    The id is published on the process's bus only after the transaction commits; a rolled-back
    transaction leaves no row and publishes nothing. `payload` must be JSON-serialisable and carry
    identifiers only.
    """
    if not topic or len(topic) > TOPIC_MAX_LENGTH:
        raise ValueError(f"event topic must be 1..{TOPIC_MAX_LENGTH} characters: {topic!r}")
    values = dict(payload or {})
    # Compact, keys sorted, UTF-8 as is: the same text json.dumps(sort_keys=True) gave, at a fraction
    # of its cost on the writer thread.
    body = _encode_sorted(values).decode()
    if tx.dialect == "postgresql" and not tx.info.get(_TX_LOCKED):
        tx.execute(sa.select(sa.func.pg_advisory_xact_lock(EVENTS_ADVISORY_LOCK)))
        tx.info[_TX_LOCKED] = True
    row = _INSERT.first(tx, {"topic": topic, "payload": body, "created_at": utc_now_ms()})
    assert row is not None
    stream_id = int(row[0])
    record = Emitted(stream_id, topic, values)
    tx.info.setdefault(_TX_EMITTED, {})[stream_id] = record
    journal = stream_journal(tx.db) if tx.db is not None else None
    tx.after_commit(lambda: _committed(journal, record))
    return stream_id


def _connection(conn: Connection | Tx) -> Connection:
    return conn.conn if isinstance(conn, Tx) else conn


def read_events(
    conn: Connection | Tx,
    after: int,
    *,
    topics: Collection[str] | None = None,
    limit: int = 100,
) -> list[Event]:
    """Events with a stream id greater than `after`, oldest first, at most `limit` of them.

    `topics`, when given, keeps only those topics (an empty collection matches nothing).
    """
    if limit <= 0:
        raise ValueError("limit must be positive")
    if isinstance(topics, str):
        topics = [topics]
    if topics is not None and not topics:
        return []
    t = events_table
    stmt = sa.select(t.c.stream_id, t.c.topic, t.c.payload, t.c.created_at).where(t.c.stream_id > after)
    if topics is not None:
        stmt = stmt.where(t.c.topic.in_(list(topics)))
    stmt = stmt.order_by(t.c.stream_id).limit(limit)
    rows = _connection(conn).execute(stmt).all()
    return [
        Event(
            stream_id=int(row.stream_id),
            topic=row.topic,
            payload=json.loads(row.payload) if row.payload else {},
            created_at=int(row.created_at),
        )
        for row in rows
    ]


def latest_stream_id(conn: Connection | Tx) -> int:
    """The newest committed stream id visible to `conn`, or 0 when the stream is empty."""
    value = _connection(conn).execute(sa.select(sa.func.max(events_table.c.stream_id))).scalar()
    return int(value or 0)
