"""Storage of the transparency log: leaves, perfect-subtree nodes, signed tree heads, signing keys.

Layout chosen so that every read the log serves is a handful of primary-key lookups:

* ``ledger_entries``: one row per leaf, keyed by its index (the rowid on SQLite); the leaf hash is
  stored with it, so level-0 nodes never need rehashing.
* ``ledger_nodes``: every *complete* perfect subtree above the leaves, keyed by (level, index) —
  the subtree of ``2**level`` leaves starting at leaf ``index * 2**level``.  An append writes its
  leaf plus the nodes it completes (one on average), and any proof or root is the fold of
  O(log n) of these rows, fetched in one query.
* ``ledger_heads``: every signed tree head ever published (strictly increasing sizes).
* ``ledger_keys``: every note-signing key ever used; the Ed25519 seed is sealed with the key ring.
"""

from __future__ import annotations

import sqlalchemy as sa

from qorgau.kernel.db import metadata
from qorgau.kernel.keys import register_sealed_column

# On SQLite an INTEGER PRIMARY KEY is the rowid: no second B-tree for the key.
_ROWID_BIGINT = sa.BigInteger().with_variant(sa.Integer, "sqlite")

ledger_entries = sa.Table(
    "ledger_entries",
    metadata,
    sa.Column("leaf_index", _ROWID_BIGINT, primary_key=True, autoincrement=False),
    # The exact RFC 8785 bytes that were hashed; never rewritten.
    sa.Column("leaf", sa.LargeBinary, nullable=False),
    # SHA-256(0x00 || leaf).  Not unique: two identical records made in the same millisecond are
    # two legitimate leaves; a lookup by hash returns the first.
    sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
    sa.Index("ix_ledger_entries_leaf_hash", "leaf_hash"),
)

ledger_nodes = sa.Table(
    "ledger_nodes",
    metadata,
    sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("node_index", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("hash", sa.LargeBinary(32), nullable=False),
    # The rows are the primary key: a clustered table on SQLite halves the storage and the lookups.
    sqlite_with_rowid=False,
)

ledger_heads = sa.Table(
    "ledger_heads",
    metadata,
    sa.Column("tree_size", _ROWID_BIGINT, primary_key=True, autoincrement=False),
    sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("timestamp_ms", sa.BigInteger, nullable=False),
    # The signed note exactly as served (C2SP tlog-checkpoint).
    sa.Column("checkpoint", sa.Text, nullable=False),
    sa.Column("key_hash", sa.String(8), nullable=False),
)

ledger_keys = sa.Table(
    "ledger_keys",
    metadata,
    # C2SP key hash of (origin, public key), 8 lowercase hex digits.
    sa.Column("key_hash", sa.String(8), primary_key=True),
    sa.Column("origin", sa.String(255), nullable=False),
    sa.Column("public_key", sa.LargeBinary(32), nullable=False),
    # The 32-byte Ed25519 seed, sealed under the key ring, bound to this row.
    sa.Column("seed_enc", sa.LargeBinary, nullable=False),
    sa.Column("valid_from", sa.BigInteger, nullable=False),
    # NULL for the current key; set when it is rotated out (it stays published).
    sa.Column("valid_until", sa.BigInteger, nullable=True),
)

register_sealed_column(ledger_keys, "seed_enc", id_column="key_hash")

__all__ = ["ledger_entries", "ledger_heads", "ledger_keys", "ledger_nodes"]
