"""The transparency log: appends in the caller's transaction, signed tree heads, proofs, keys.

Appends are cheap: one leaf row plus the perfect-subtree nodes the leaf completes (one on average),
computed from the right edge of the tree, which each process caches and re-validates against the
database inside the appending transaction (another process may have appended since).  The rows of
all appends of one transaction are inserted together just before it commits (``Tx.before_commit``),
so a group-commit batch of N appends costs two multi-row inserts.
On PostgreSQL the first append of a transaction takes the deployment's write-ordering advisory lock
(the one the event outbox takes, so the two can never deadlock); on SQLite ``BEGIN IMMEDIATE``
already serialises writers.  Do not append inside a SAVEPOINT that may roll back on its own: the
entry would still be written (the transaction, not the savepoint, is the unit).

Reads (roots, proofs) fetch the O(log n) nodes they need in one query and fold them with
:mod:`qorgau.kernel.ledger.merkle`.

Tree heads are signed C2SP checkpoints.  A head is signed when the log has grown, at most once per
``ledger_sign_interval_ms`` (or on demand), and for the empty log; every head is kept, with strictly
increasing sizes.  Signing runs in its own short transaction under a second lock, so two processes
signing at once never publish sizes out of order.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from qorgau.kernel.crypto import row_aad, seal, unseal
from qorgau.kernel.db import Tx, utc_now_ms
from qorgau.kernel.errors import Problem
from qorgau.kernel.events import EVENTS_ADVISORY_LOCK
from qorgau.kernel.ledger import merkle, note
from qorgau.kernel.ledger.entry import make_entry
from qorgau.kernel.ledger.tables import ledger_entries, ledger_heads, ledger_keys, ledger_nodes
from qorgau.kernel.observability import log

if TYPE_CHECKING:
    from qorgau.kernel.context import Kernel

__all__ = ["KeyInfo", "Ledger", "TreeHead"]

# Appends share the event outbox's advisory lock (and its per-transaction marker): a transaction that
# appends and emits in either order then holds one lock, never two in opposite orders.
_APPEND_LOCK = EVENTS_ADVISORY_LOCK
_APPEND_LOCKED = "qorgau.events.locked"
# Signing heads and creating or rotating keys ("qorgaulh" in ASCII).
_SIGN_LOCK = 0x716F7267_61756C68
_TX_STATE = "qorgau.ledger.append"


@dataclass(frozen=True, slots=True)
class TreeHead:
    """A signed tree head: the log's size and root, when it was signed, and the signed checkpoint."""

    tree_size: int
    root_hash: bytes
    timestamp_ms: int
    checkpoint: str
    key_hash: str

    @property
    def root_b64(self) -> str:
        return base64.b64encode(self.root_hash).decode("ascii")


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A published note-signing key and the period it signed in (ms since the epoch)."""

    origin: str
    public_key: bytes
    key_hash: str
    valid_from: int
    valid_until: int | None

    @property
    def verifier_key(self) -> str:
        return note.Verifier(self.origin, self.public_key).verifier_key


class _Edge:
    """The tree's size and the perfect subtrees on its right edge (what the next append needs)."""

    __slots__ = ("nodes", "size")

    def __init__(self, size: int, nodes: merkle.NodeMap) -> None:
        self.size = size
        self.nodes = nodes

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf; return the nodes it completes (level 0 first)."""
        completed = merkle.batch_levels(self.nodes, self.size, [leaf_hash])
        # The new right edge: the old one minus the subtrees merged into the new top node.
        for level, index, _h in completed[:-1]:
            self.nodes.pop((level, index - 1) if index & 1 else (level, index + 1), None)
        level, index, top = completed[-1]
        self.nodes[(level, index)] = top
        self.size += 1
        return completed

    def copy(self) -> _Edge:
        return _Edge(self.size, merkle.NodeMap(self.nodes))


class _Pending:
    """Appends of one transaction not yet written: they are inserted when it commits."""

    __slots__ = ("edge", "entries", "nodes")

    def __init__(self, edge: _Edge) -> None:
        self.edge = edge
        self.entries: list[dict[str, Any]] = []
        self.nodes: list[dict[str, Any]] = []

    def flush(self, conn: Connection) -> None:
        if self.entries:
            conn.execute(ledger_entries.insert(), self.entries)
        if self.nodes:
            conn.execute(ledger_nodes.insert(), self.nodes)
        self.entries, self.nodes = [], []


@functools.lru_cache(maxsize=256)
def _nodes_query(with_leaves: bool, inner: int) -> sa.CompoundSelect[Any] | sa.Select[Any]:
    """The statement fetching leaf hashes (``:leaves``) and ``inner`` nodes (``:lv<i>``, ``:ix<i>``).

    Built once per shape: a proof's statement then costs no construction, only execution.
    """
    parts: list[sa.Select[Any]] = []
    if with_leaves:
        parts.append(
            sa.select(
                sa.literal(0, sa.Integer).label("level"),
                ledger_entries.c.leaf_index.label("node_index"),
                ledger_entries.c.leaf_hash.label("hash"),
            ).where(ledger_entries.c.leaf_index.in_(sa.bindparam("leaves", expanding=True)))
        )
    if inner:
        # An OR of primary-key equalities: both engines turn it into index lookups, which a
        # row-value IN is not on SQLite.
        parts.append(
            sa.select(ledger_nodes.c.level, ledger_nodes.c.node_index, ledger_nodes.c.hash).where(
                sa.or_(
                    *(
                        sa.and_(
                            ledger_nodes.c.level == sa.bindparam(f"lv{i}", type_=sa.SmallInteger),
                            ledger_nodes.c.node_index == sa.bindparam(f"ix{i}", type_=sa.BigInteger),
                        )
                        for i in range(inner)
                    )
                )
            )
        )
    return parts[0] if len(parts) == 1 else sa.union_all(*parts)


def _fetch_nodes(conn: Connection, coords: Iterable[tuple[int, int]]) -> merkle.NodeMap:
    """The hashes of the given perfect subtrees, in one query (level 0 comes from the leaves)."""
    leaves: list[int] = []
    params: dict[str, Any] = {}
    inner = 0
    for level, index in sorted(set(coords)):
        if level:
            params[f"lv{inner}"] = level
            params[f"ix{inner}"] = index
            inner += 1
        else:
            leaves.append(index)
    found = merkle.NodeMap()
    if not leaves and not inner:
        return found
    if leaves:
        params["leaves"] = leaves
    for level, index, h in conn.execute(_nodes_query(bool(leaves), inner), params):
        found[(int(level), int(index))] = bytes(h)
    return found


def _fold(nodes: merkle.NodeMap, coords: list[tuple[int, int]]) -> bytes:
    """Hash of the subtree whose perfect parts are ``coords`` (left to right), as RFC 9162 folds them."""
    h = nodes.perfect(*coords[-1])
    for level, index in reversed(coords[:-1]):
        h = merkle.node_hash(nodes.perfect(level, index), h)
    return h


def _stored_size(conn: Connection) -> int:
    last = conn.execute(sa.select(sa.func.max(ledger_entries.c.leaf_index))).scalar()
    return 0 if last is None else int(last) + 1


def _head(row: Any) -> TreeHead:
    return TreeHead(
        tree_size=int(row.tree_size),
        root_hash=bytes(row.root_hash),
        timestamp_ms=int(row.timestamp_ms),
        checkpoint=str(row.checkpoint),
        key_hash=str(row.key_hash),
    )


def _key_info(row: Any) -> KeyInfo:
    return KeyInfo(
        origin=str(row.origin),
        public_key=bytes(row.public_key),
        key_hash=str(row.key_hash),
        valid_from=int(row.valid_from),
        valid_until=None if row.valid_until is None else int(row.valid_until),
    )


class Ledger:
    """The deployment's append-only RFC 9162 log, stored in the kernel's database."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._lock = threading.Lock()
        self._edge: _Edge | None = None  # committed right edge, as this process last saw it
        self._signer: note.Signer | None = None

    @property
    def _db(self) -> Any:
        return self.kernel.db

    # ------------------------------------------------------------------ appends

    def append(
        self,
        tx: Tx,
        *,
        entry_type: str,
        actor: str,
        action: str,
        subject: str | None,
        obj: Mapping[str, Any],
    ) -> int:
        """Record an entry in the caller's transaction; returns its leaf index.

        Raises ``EntryError``/``PiiError`` (ValueErrors) for an entry that is not valid ledger JSON
        or carries something that looks like clear personal data.
        """
        leaf = make_entry(entry_type, actor, action, subject, obj, datetime.now(UTC))
        leaf_h = merkle.leaf_hash(leaf)
        pending = self._pending(tx)
        index = pending.edge.size
        pending.entries.append({"leaf_index": index, "leaf": leaf, "leaf_hash": leaf_h})
        pending.nodes.extend(
            {"level": lv, "node_index": ix, "hash": h} for lv, ix, h in pending.edge.append(leaf_h) if lv
        )
        return index

    def _pending(self, tx: Tx) -> _Pending:
        """This transaction's appends, started (once per transaction) from the validated right edge."""
        pending: _Pending | None = tx.info.get(_TX_STATE)
        if pending is not None:
            return pending
        if tx.dialect == "postgresql" and not tx.info.get(_APPEND_LOCKED):
            tx.execute(sa.select(sa.func.pg_advisory_xact_lock(_APPEND_LOCK)))
            tx.info[_APPEND_LOCKED] = True
        size = _stored_size(tx.conn)
        with self._lock:
            cached = self._edge
            edge = cached.copy() if cached is not None and cached.size == size else None
        if edge is None:
            coords = merkle.subtree_layout(0, size) if size else []
            edge = _Edge(size, _fetch_nodes(tx.conn, coords))
            if len(edge.nodes) != len(coords):
                raise RuntimeError("ledger storage is missing right-edge nodes")
        pending = _Pending(edge)
        tx.info[_TX_STATE] = pending
        # The rows are written in two multi-row inserts just before the transaction commits, which
        # costs a fraction of one insert per append; the caller's transaction stays the unit.
        tx.before_commit(pending.flush)
        tx.after_commit(lambda: self._remember(edge))
        return pending

    def _remember(self, edge: _Edge) -> None:
        with self._lock:
            if self._edge is None or edge.size > self._edge.size:
                self._edge = edge.copy()

    # ------------------------------------------------------------------ reads

    def size(self) -> int:
        """Entries appended (and committed) so far."""
        with self._db.read() as conn:
            return _stored_size(conn)

    def latest_head(self) -> TreeHead | None:
        with self._db.read() as conn:
            row = conn.execute(sa.select(ledger_heads).order_by(ledger_heads.c.tree_size.desc()).limit(1)).first()
        return _head(row) if row is not None else None

    def heads(self, after: int | None = None, limit: int = 100) -> list[TreeHead]:
        """Signed heads with ``tree_size > after`` (all when ``after`` is None), oldest first."""
        query = sa.select(ledger_heads).order_by(ledger_heads.c.tree_size).limit(limit)
        if after is not None:
            query = query.where(ledger_heads.c.tree_size > after)
        with self._db.read() as conn:
            return [_head(row) for row in conn.execute(query)]

    def head_at(self, tree_size: int) -> TreeHead | None:
        with self._db.read() as conn:
            row = conn.execute(sa.select(ledger_heads).where(ledger_heads.c.tree_size == tree_size)).first()
        return _head(row) if row is not None else None

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """``(leaf_index, leaf bytes)`` for ``start <= leaf_index <= end`` (inclusive, as RFC 9162)."""
        query = (
            sa.select(ledger_entries.c.leaf_index, ledger_entries.c.leaf)
            .where(ledger_entries.c.leaf_index >= start, ledger_entries.c.leaf_index <= end)
            .order_by(ledger_entries.c.leaf_index)
        )
        with self._db.read() as conn:
            return [(int(i), bytes(leaf)) for i, leaf in conn.execute(query)]

    def leaf_index_of(self, leaf_hash: bytes) -> int | None:
        """The first leaf with this leaf hash, or None."""
        with self._db.read() as conn:
            found = conn.execute(
                sa.select(sa.func.min(ledger_entries.c.leaf_index)).where(
                    ledger_entries.c.leaf_hash == bytes(leaf_hash)
                )
            ).scalar()
        return None if found is None else int(found)

    def _fold(self, groups: list[list[tuple[int, int]]]) -> list[bytes]:
        with self._db.read() as conn:
            nodes = _fetch_nodes(conn, (c for g in groups for c in g))
        try:
            return [_fold(nodes, g) for g in groups]
        except KeyError:
            raise Problem("ledger.out_of_range", detail="the requested tree is larger than the log") from None

    def inclusion_proof(self, leaf_index: int, tree_size: int) -> list[bytes]:
        """RFC 9162 §2.1.3.1 PATH(leaf_index, D[tree_size]); needs ``leaf_index < tree_size <= size()``."""
        try:
            groups = merkle.inclusion_layout(leaf_index, tree_size)
        except ValueError as exc:
            raise Problem("ledger.out_of_range", field="leaf_index", detail=str(exc)) from None
        return self._fold(groups)

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """RFC 9162 §2.1.4.1 PROOF(first, D[second]); needs ``0 < first <= second <= size()``."""
        try:
            groups = merkle.consistency_layout(first, second)
        except ValueError as exc:
            raise Problem("ledger.out_of_range", field="first", detail=str(exc)) from None
        return self._fold(groups)

    def root_at(self, size: int) -> bytes:
        """MTH(D[size]) from the stored nodes; ``size`` must not exceed ``size()``."""
        if size < 0:
            raise Problem("ledger.out_of_range", detail="negative tree size")
        if size == 0:
            return merkle.EMPTY_ROOT
        return self._fold([merkle.subtree_layout(0, size)])[0]

    def keys(self) -> list[KeyInfo]:
        """Every note-signing key ever used, oldest first; the current key is last."""
        with self._db.read() as conn:
            found = [_key_info(row) for row in conn.execute(sa.select(ledger_keys))]
        return sorted(found, key=lambda k: (k.valid_until is None, k.valid_from, k.valid_until or 0, k.key_hash))

    # ------------------------------------------------------------------ signing

    def sign_if_grown(self, force: bool = False) -> TreeHead | None:
        """Sign a head for the current size if the log has grown since the last head.

        Without ``force`` at most one head per ``ledger_sign_interval_ms``.  The empty log gets a
        head too.  Returns the new head, or None when nothing was signed (not grown, too soon, or
        another process signed this size first).
        """
        min_gap = self.kernel.settings.ledger_sign_interval_ms
        with self._db.transaction() as tx:
            self._lock_signing(tx)
            last = tx.execute(
                sa.select(ledger_heads.c.tree_size, ledger_heads.c.timestamp_ms)
                .order_by(ledger_heads.c.tree_size.desc())
                .limit(1)
            ).first()
            size = _stored_size(tx.conn)
            now = utc_now_ms()
            if last is not None:
                if size <= last.tree_size:
                    return None
                if not force and now - int(last.timestamp_ms) < min_gap:
                    return None
            if size:
                nodes = _fetch_nodes(tx.conn, merkle.subtree_layout(0, size))
                root = _fold(nodes, merkle.subtree_layout(0, size))
            else:
                root = merkle.EMPTY_ROOT
            signer = self._current_signer(tx)
            checkpoint = note.sign_checkpoint(note.Checkpoint(signer.name, size, root), signer)
            head = TreeHead(size, root, now, checkpoint, f"{signer.key_hash:08x}")
            tx.execute(
                ledger_heads.insert().values(
                    tree_size=size,
                    root_hash=root,
                    timestamp_ms=now,
                    checkpoint=checkpoint,
                    key_hash=head.key_hash,
                )
            )
        return head

    async def run_signer(self) -> None:
        """Sign heads in the background every ``ledger_sign_interval_ms``; survives any error."""
        interval = self.kernel.settings.ledger_sign_interval_ms / 1000
        while True:
            try:
                await asyncio.to_thread(self.sign_if_grown)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The type only: messages can carry driver details, never needed to act on this.
                log.error("ledger_sign_failed", error=type(exc).__name__)
            await asyncio.sleep(interval)

    def rotate_key(self) -> KeyInfo:
        """Start signing with a new Ed25519 key; the old one is closed but stays published."""
        now = utc_now_ms()
        with self._db.transaction() as tx:
            self._lock_signing(tx)
            signer = self._new_key(tx, now)
        with self._lock:
            self._signer = signer
        return KeyInfo(signer.name, signer.public_key, f"{signer.key_hash:08x}", now, None)

    def current_key(self) -> KeyInfo:
        """The key that signs new heads (created on first need)."""
        with self._db.transaction() as tx:
            self._lock_signing(tx)
            signer = self._current_signer(tx)
            row = tx.execute(sa.select(ledger_keys).where(ledger_keys.c.key_hash == f"{signer.key_hash:08x}")).one()
        return _key_info(row)

    def _lock_signing(self, tx: Tx) -> None:
        if tx.dialect == "postgresql":
            tx.execute(sa.select(sa.func.pg_advisory_xact_lock(_SIGN_LOCK)))

    def _current_signer(self, tx: Tx) -> note.Signer:
        """The current key's signer, creating it (or rotating to the configured origin) if needed."""
        row = tx.execute(
            sa.select(ledger_keys)
            .where(ledger_keys.c.valid_until.is_(None))
            .order_by(ledger_keys.c.valid_from.desc())
            .limit(1)
        ).first()
        origin = self.kernel.settings.ledger_origin
        if row is None or row.origin != origin:
            return self._new_key(tx, utc_now_ms())
        with self._lock:
            cached = self._signer
        if cached is not None and f"{cached.key_hash:08x}" == row.key_hash and cached.name == row.origin:
            return cached
        seed = unseal(self.kernel.keyring, bytes(row.seed_enc), row_aad("ledger_keys", "seed_enc", row.key_hash))
        signer = note.Signer(seed, row.origin)
        if f"{signer.key_hash:08x}" != row.key_hash or signer.public_key != bytes(row.public_key):
            raise RuntimeError("stored ledger key does not match its key hash")
        with self._lock:
            self._signer = signer
        return signer

    def _new_key(self, tx: Tx, now: int) -> note.Signer:
        origin = self.kernel.settings.ledger_origin
        taken = set(tx.execute(sa.select(ledger_keys.c.key_hash)).scalars())
        while True:
            seed = note.generate_seed()
            signer = note.Signer(seed, origin)
            key_hash = f"{signer.key_hash:08x}"
            if key_hash not in taken:  # a 32-bit id: never reuse one for another key
                break
        tx.execute(ledger_keys.update().where(ledger_keys.c.valid_until.is_(None)).values(valid_until=now))
        tx.execute(
            ledger_keys.insert().values(
                key_hash=key_hash,
                origin=origin,
                public_key=signer.public_key,
                seed_enc=seal(self.kernel.keyring, seed, row_aad("ledger_keys", "seed_enc", key_hash)),
                valid_from=now,
                valid_until=None,
            )
        )
        return signer
