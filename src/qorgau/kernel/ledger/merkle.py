"""RFC 9162 Merkle tree hashing, proofs and proof verification (pure, no I/O).

Hashing (RFC 9162 §2.1.1), SHA-256 throughout::

    MTH({})      = SHA-256()
    leaf hash    = SHA-256(0x00 || entry)
    node hash    = SHA-256(0x01 || left || right)
    MTH(D[n])    = node(MTH(D[0:k]), MTH(D[k:n])), k the largest power of two < n

Proof *generation* works over a :class:`NodeSource`: anything that can return
the hash of a *perfect* subtree, i.e. the subtree of ``2**level`` leaves
starting at leaf ``index * 2**level``.  Every node of an RFC 9162 tree is either
such a perfect subtree or lies on the right edge of the tree, and a right-edge
node is the fold of at most ``log2 n`` perfect subtrees.  An inclusion or
consistency proof therefore needs O(log n) stored hashes; the ``*_layout``
functions name them up front so a storage layer can fetch them all in one
query (see :class:`NodeMap`).

Proofs are lists of 32-byte hashes in exactly the order of RFC 9162 §2.1.3.1
``PATH(m, D[n])`` and §2.1.4.1 ``PROOF(m, D[n])`` (bottom of the tree first).
Verification implements RFC 9162 §2.1.3.2 and §2.1.4.2 literally.

Error policy of the verifiers: they return ``False`` for every proof that does
not verify, including malformed ones (wrong hash lengths, non-bytes items, too
short or too long paths, ``leaf_index >= tree_size``, ``first == 0``).  They
raise :class:`ValueError` only for arguments that cannot describe any tree:
negative sizes or indices, non-integers, or ``first > second``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "MemoryTree",
    "NodeMap",
    "NodeSource",
    "batch_levels",
    "consistency_layout",
    "consistency_proof",
    "inclusion_layout",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "root_from_consistency",
    "root_from_inclusion",
    "subtree_layout",
    "subtree_root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT: bytes = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

# A node of the tree, named by (level, index): the perfect subtree covering
# leaves [index * 2**level, (index + 1) * 2**level).
Coord = tuple[int, int]


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry)."""
    return hashlib.sha256(_LEAF_PREFIX + bytes(entry)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly less than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_int(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an int")
    if value < 0:
        raise ValueError(f"{name} must be non-negative")


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves (RFC 9162 §2.1.1).

    Pairs nodes level by level, promoting an unpaired last node unchanged;
    this builds exactly the tree of the RFC's largest-power-of-two split.
    """
    level = [bytes(h) for h in leaf_hashes]
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


@runtime_checkable
class NodeSource(Protocol):
    """Source of perfect-subtree hashes.

    ``perfect(level, index)`` returns the hash of the perfect subtree covering
    leaves ``[index * 2**level, (index + 1) * 2**level)``; level 0 is the leaf
    hash.  Only nodes whose leaves all exist are ever asked for.
    """

    def perfect(self, level: int, index: int) -> bytes: ...


class NodeMap(dict[Coord, bytes]):
    """A ``{(level, index): hash}`` dict usable as a :class:`NodeSource`.

    Typical storage use: compute ``inclusion_layout``/``consistency_layout``,
    fetch every named node in one query into a ``NodeMap``, then call
    ``inclusion_proof``/``consistency_proof`` with it.
    """

    def perfect(self, level: int, index: int) -> bytes:
        try:
            return self[(level, index)]
        except KeyError:
            raise KeyError(f"node (level={level}, index={index}) not available") from None


def _is_valid_subtree(start: int, end: int) -> bool:
    width = end - start
    if start < 0 or width <= 0:
        return False
    # A node of an RFC 9162 tree with `width` leaves starts at a multiple of the
    # smallest power of two >= width.
    return start % (1 << (width - 1).bit_length()) == 0


def subtree_layout(start: int, end: int) -> list[Coord]:
    """Perfect subtrees, left to right, whose fold is MTH(D[start:end]).

    ``[start, end)`` must be a node of some RFC 9162 tree: ``start`` a multiple
    of the smallest power of two >= ``end - start``.  Otherwise ValueError.
    """
    _check_int("start", start)
    _check_int("end", end)
    if not _is_valid_subtree(start, end):
        raise ValueError(f"[{start}, {end}) is not a Merkle subtree")
    out: list[Coord] = []
    while start < end:
        level = (end - start).bit_length() - 1
        out.append((level, start >> level))
        start += 1 << level
    return out


def _fold(src: NodeSource, coords: Sequence[Coord]) -> bytes:
    h = src.perfect(*coords[-1])
    for level, index in reversed(coords[:-1]):
        h = node_hash(src.perfect(level, index), h)
    return h


def subtree_root(src: NodeSource, start: int, end: int) -> bytes:
    """MTH(D[start:end]) read from ``src`` (at most log2(end - start) + 1 reads)."""
    return _fold(src, subtree_layout(start, end))


def inclusion_layout(leaf_index: int, tree_size: int) -> list[list[Coord]]:
    """Nodes needed for PATH(leaf_index, D[tree_size]), one group per proof hash.

    Each group is folded like :func:`subtree_root`; groups are in RFC order.
    """
    _check_int("leaf_index", leaf_index)
    _check_int("tree_size", tree_size)
    if leaf_index >= tree_size:
        raise ValueError(f"leaf_index {leaf_index} out of range for tree_size {tree_size}")
    groups: list[list[Coord]] = []
    start, end = 0, tree_size
    while end - start > 1:
        k = _split(end - start)
        if leaf_index < start + k:
            groups.append(subtree_layout(start + k, end))
            end = start + k
        else:
            groups.append(subtree_layout(start, start + k))
            start += k
    groups.reverse()
    return groups


def consistency_layout(first: int, second: int) -> list[list[Coord]]:
    """Nodes needed for PROOF(first, D[second]) (RFC 9162 §2.1.4.1), in RFC order.

    Requires ``0 < first <= second``; ``first == second`` gives an empty proof.
    """
    _check_int("first", first)
    _check_int("second", second)
    if first == 0 or first > second:
        raise ValueError(f"no consistency proof from size {first} to size {second}")
    groups: list[list[Coord]] = []
    start, end, m, complete = 0, second, first, True
    # SUBPROOF(m, D[start:end], complete), iteratively.
    while True:
        width = end - start
        if m == width:
            if not complete:
                groups.append(subtree_layout(start, end))
            break
        k = _split(width)
        if m <= k:
            groups.append(subtree_layout(start + k, end))
            end = start + k
        else:
            groups.append(subtree_layout(start, start + k))
            start += k
            m -= k
            complete = False
    groups.reverse()
    return groups


def inclusion_proof(src: NodeSource, leaf_index: int, tree_size: int) -> list[bytes]:
    """RFC 9162 §2.1.3.1 PATH(leaf_index, D[tree_size]) from ``src``."""
    return [_fold(src, g) for g in inclusion_layout(leaf_index, tree_size)]


def consistency_proof(src: NodeSource, first: int, second: int) -> list[bytes]:
    """RFC 9162 §2.1.4.1 PROOF(first, D[second]) from ``src``.

    ValueError unless ``0 < first <= second``.
    """
    return [_fold(src, g) for g in consistency_layout(first, second)]


def batch_levels(src: NodeSource, size: int, new_leaf_hashes: Iterable[bytes]) -> list[tuple[int, int, bytes]]:
    """Perfect-subtree nodes completed by appending ``new_leaf_hashes`` at ``size``.

    Returns ``(level, index, hash)`` for every node that becomes complete,
    *including the level-0 nodes of the new leaves themselves*, in the order
    they complete (each leaf, then the parents it completes, bottom up).
    Persisting exactly these keeps a store able to answer every
    ``perfect()`` query.  Reads from ``src`` only the left siblings that
    already existed before the batch: at most ``log2(size)`` reads.
    """
    _check_int("size", size)
    fresh: dict[Coord, bytes] = {}
    out: list[tuple[int, int, bytes]] = []
    index = size
    for h in new_leaf_hashes:
        h = bytes(h)
        if len(h) != HASH_SIZE:
            raise ValueError("leaf hashes must be 32 bytes")
        level, i, cur = 0, index, h
        fresh[(0, i)] = cur
        out.append((0, i, cur))
        while i & 1:
            left = fresh.get((level, i - 1))
            if left is None:
                left = src.perfect(level, i - 1)
            cur = node_hash(left, cur)
            level += 1
            i >>= 1
            fresh[(level, i)] = cur
            out.append((level, i, cur))
        index += 1
    return out


class MemoryTree:
    """In-memory log of leaf hashes that stores every completed perfect subtree.

    Implements :class:`NodeSource`; appends cost O(1) amortised hashing, proofs
    O(log n).  Meant for tests, the offline verifier and small logs.
    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        self.extend(leaf_hashes)

    @classmethod
    def from_entries(cls, entries: Iterable[bytes]) -> MemoryTree:
        return cls(leaf_hash(e) for e in entries)

    def __len__(self) -> int:
        return len(self._levels[0])

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def append(self, leaf_hash: bytes) -> int:
        """Append one leaf hash; returns its index."""
        index = self.size
        for level, i, h in batch_levels(self, index, [leaf_hash]):
            if level == len(self._levels):
                self._levels.append([])
            assert len(self._levels[level]) == i
            self._levels[level].append(h)
        return index

    def append_entry(self, entry: bytes) -> int:
        return self.append(leaf_hash(entry))

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        for h in leaf_hashes:
            self.append(h)

    def leaf(self, index: int) -> bytes:
        return self.perfect(0, index)

    def perfect(self, level: int, index: int) -> bytes:
        _check_int("level", level)
        _check_int("index", index)
        if level >= len(self._levels) or index >= len(self._levels[level]):
            raise ValueError(f"perfect subtree (level={level}, index={index}) is not complete")
        return self._levels[level][index]

    def root(self, size: int | None = None) -> bytes:
        size = self.size if size is None else size
        _check_int("size", size)
        if size > self.size:
            raise ValueError("size beyond the tree")
        return EMPTY_ROOT if size == 0 else subtree_root(self, 0, size)

    def inclusion_proof(self, leaf_index: int, tree_size: int | None = None) -> list[bytes]:
        tree_size = self.size if tree_size is None else tree_size
        if tree_size > self.size:
            raise ValueError("tree_size beyond the tree")
        return inclusion_proof(self, leaf_index, tree_size)

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        second = self.size if second is None else second
        if second > self.size:
            raise ValueError("second beyond the tree")
        return consistency_proof(self, first, second)


# --------------------------------------------------------------------------
# Verification (RFC 9162 §2.1.3.2, §2.1.4.2)


def _as_hash(value: object) -> bytes | None:
    if isinstance(value, (bytes, bytearray, memoryview)):
        b = bytes(value)
        if len(b) == HASH_SIZE:
            return b
    return None


def _as_path(path: object) -> list[bytes] | None:
    if isinstance(path, (str, bytes, bytearray, memoryview)):
        return None
    try:
        items = list(path)  # type: ignore[call-overload]
    except TypeError:
        return None
    out = []
    for p in items:
        h = _as_hash(p)
        if h is None:
            return None
        out.append(h)
    return out


def root_from_inclusion(leaf_hash: bytes, leaf_index: int, tree_size: int, path: Sequence[bytes]) -> bytes | None:
    """Root implied by an inclusion proof, or None if the proof is malformed."""
    _check_int("leaf_index", leaf_index)
    _check_int("tree_size", tree_size)
    r = _as_hash(leaf_hash)
    proof = _as_path(path)
    # 1. leaf_index >= tree_size fails.
    if r is None or proof is None or leaf_index >= tree_size:
        return None
    # 2. fn = leaf_index, sn = tree_size - 1; 3. r = hash.
    fn, sn = leaf_index, tree_size - 1
    # 4. For each p in inclusion_path:
    for p in proof:
        # a. sn == 0 fails.
        if sn == 0:
            return None
        # b. LSB(fn) set or fn == sn:
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # ii. Shift until LSB(fn) set or fn == 0.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        # c. Shift once.
        fn >>= 1
        sn >>= 1
    # 5. sn must be 0.
    if sn != 0:
        return None
    return r


def verify_inclusion(leaf_hash: bytes, leaf_index: int, tree_size: int, path: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does ``path`` prove the leaf at ``leaf_index`` under ``root``?"""
    computed = root_from_inclusion(leaf_hash, leaf_index, tree_size, path)
    expected = _as_hash(root)
    return computed is not None and expected is not None and hmac.compare_digest(computed, expected)


def _consistency_roots(first: int, second: int, first_root: bytes, path: Sequence[bytes]) -> tuple[bytes, bytes] | None:
    """(fr, sr) of RFC 9162 §2.1.4.2 for ``0 < first < second``, or None."""
    proof = _as_path(path)
    # 1. An empty consistency_path fails.
    if not proof:
        return None
    # 2. If first is an exact power of 2, prepend first_hash.
    if first & (first - 1) == 0:
        proof.insert(0, first_root)
    # 3. fn = first - 1, sn = second - 1.
    fn, sn = first - 1, second - 1
    # 4. While LSB(fn) is set, shift both.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. fr = sr = consistency_path[0].
    fr = sr = proof[0]
    # 6. For each subsequent c:
    for c in proof[1:]:
        # a. sn == 0 fails.
        if sn == 0:
            return None
        # b. LSB(fn) set or fn == sn:
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            # iii. Shift until LSB(fn) set or fn == 0.
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        # c. Shift once.
        fn >>= 1
        sn >>= 1
    # 7. sn must be 0 (fr/sr compared by the caller).
    if sn != 0:
        return None
    return fr, sr


def root_from_consistency(first: int, second: int, first_root: bytes, path: Sequence[bytes]) -> bytes | None:
    """Second root implied by a consistency proof that checks against ``first_root``.

    None if the proof is malformed or does not reproduce ``first_root``.
    ``first == second`` needs an empty path and returns ``first_root``.
    ``first == 0`` returns None (RFC 9162 defines no such proof).
    ValueError for negative sizes or ``first > second``.
    """
    _check_int("first", first)
    _check_int("second", second)
    if first > second:
        raise ValueError(f"first ({first}) > second ({second})")
    fh = _as_hash(first_root)
    proof = _as_path(path)
    if fh is None or proof is None or first == 0:
        return None
    if first == second:
        return fh if not proof else None
    roots = _consistency_roots(first, second, fh, proof)
    if roots is None or not hmac.compare_digest(roots[0], fh):
        return None
    return roots[1]


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: is the tree (second, second_root) an extension of (first, first_root)?

    ``first == second`` verifies iff the path is empty and the roots are equal.
    ``first == 0`` returns False (RFC 9162 defines no proof from the empty tree).
    ValueError only for negative sizes or ``first > second``.
    """
    computed = root_from_consistency(first, second, first_root, path)
    expected = _as_hash(second_root)
    return computed is not None and expected is not None and hmac.compare_digest(computed, expected)
