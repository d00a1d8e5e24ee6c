"""Offline verification of a whole ledger, from a running deployment (HTTP) or its database.

``verify_source`` trusts nothing the source says without checking it:

1. every signed tree head's checkpoint is opened with the trusted note keys (the ``--key`` verifier
   keys when given, else the keys the source publishes) and must state the head's size and root;
   sizes must strictly increase;
2. each pair of consecutive heads is proven consistent (RFC 9162 §2.1.4.2) with a proof the
   source serves;
3. every entry is fetched, must be canonical ledger JSON, and the Merkle root is recomputed from the
   leaves at every head's size (RFC 9162 §2.1.1) and compared with the signed root;
4. every entry's inclusion in the latest head is checked with an RFC 9162 §2.1.3.2 audit path
   built from the recomputed tree, and a sample of the source's own inclusion proofs is verified
   too, so its proof service is exercised as well.

Any failure raises :class:`LedgerMismatch` naming the head and, where it can be found, the entry.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from qorgau.kernel.errors import Problem
from qorgau.kernel.ledger import merkle, note
from qorgau.kernel.ledger.entry import EntryError, parse_entry

if TYPE_CHECKING:
    from qorgau.kernel.context import Kernel

__all__ = [
    "DatabaseSource",
    "HeadRecord",
    "HttpSource",
    "LedgerMismatch",
    "LedgerUnavailable",
    "Report",
    "Source",
    "source_from_database",
    "source_from_url",
    "verify_source",
]

PAGE = 1000
SERVER_PROOF_SAMPLE = 32
# When a recomputed root differs, the entries that could be at fault are checked one by one with
# the source's inclusion proofs, to name the entry; beyond this many the message names only the head.
LOCATE_LIMIT = 10_000


class LedgerMismatch(Exception):
    """The ledger does not verify; the message says where."""


class LedgerUnavailable(LedgerMismatch):
    """The source could not be read (network, HTTP error, malformed answer)."""


@dataclass(frozen=True, slots=True)
class HeadRecord:
    """A signed tree head as a source reports it (the checkpoint is what is actually trusted)."""

    tree_size: int
    root_hash: bytes
    timestamp_ms: int
    checkpoint: str


@dataclass(frozen=True, slots=True)
class Report:
    tree_heads: int
    entries: int
    tree_size: int
    root_b64: str


class Source(Protocol):
    """What the verifier reads; every method may page (return fewer items than asked)."""

    def keys(self) -> list[str]:
        """The note verifier keys the source publishes."""
        ...

    def tree_heads(self, after: int | None, limit: int) -> list[HeadRecord]: ...

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        """Entries ``start..end`` inclusive, possibly fewer, from ``start`` on."""
        ...

    def consistency(self, first: int, second: int) -> list[bytes]: ...

    def inclusion(self, leaf_index: int, tree_size: int) -> list[bytes]: ...


# ---------------------------------------------------------------------------------------- sources


def _b64hash(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise LedgerUnavailable(f"malformed answer: {what} is not a base64 string")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise LedgerUnavailable(f"malformed answer: {what} is not valid base64") from None
    return raw


def _int_field(obj: Any, key: str, what: str) -> int:
    value = obj.get(key) if isinstance(obj, dict) else None
    if not isinstance(value, int) or isinstance(value, bool):
        raise LedgerUnavailable(f"malformed answer: {what} has no integer {key!r}")
    return value


class HttpSource:
    """Reads a deployment's public ledger API (``/api/v1/ledger/...``)."""

    def __init__(self, base_url: str, *, client: httpx.Client | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)

    def close(self) -> None:
        self._client.close()

    def _get(self, path: str, **params: Any) -> Any:
        url = f"{self.base_url}/api/v1/ledger/{path}"
        try:
            response = self._client.get(url, params={k: v for k, v in params.items() if v is not None})
        except httpx.HTTPError as exc:
            raise LedgerUnavailable(f"cannot reach {url}: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            detail = ""
            try:
                body = response.json()
                detail = f" ({body.get('code')}: {body.get('detail') or body.get('title')})"
            except ValueError:
                pass
            raise LedgerUnavailable(f"GET {response.request.url} answered {response.status_code}{detail}")
        try:
            return response.json()
        except ValueError:
            raise LedgerUnavailable(f"GET {response.request.url} did not answer JSON") from None

    def keys(self) -> list[str]:
        body = self._get("keys")
        keys = body.get("keys") if isinstance(body, dict) else None
        if not isinstance(keys, list):
            raise LedgerUnavailable("malformed answer from /keys")
        out = []
        for k in keys:
            vkey = k.get("verifier_key") if isinstance(k, dict) else None
            if not isinstance(vkey, str):
                raise LedgerUnavailable("malformed answer from /keys: a key has no verifier_key")
            out.append(vkey)
        return out

    def tree_heads(self, after: int | None, limit: int) -> list[HeadRecord]:
        body = self._get("tree-heads", after=after, limit=limit)
        heads = body.get("tree_heads") if isinstance(body, dict) else None
        if not isinstance(heads, list):
            raise LedgerUnavailable("malformed answer from /tree-heads")
        out = []
        for h in heads:
            size = _int_field(h, "tree_size", "a tree head")
            cp = h.get("checkpoint")
            if not isinstance(cp, str):
                raise LedgerUnavailable(f"malformed answer: tree head {size} has no checkpoint")
            out.append(
                HeadRecord(
                    size,
                    _b64hash(h.get("root_hash"), f"root of tree head {size}"),
                    _int_field(h, "timestamp", f"tree head {size}"),
                    cp,
                )
            )
        return out

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        body = self._get("entries", start=start, end=end)
        items = body.get("entries") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise LedgerUnavailable("malformed answer from /entries")
        out = []
        for item in items:
            index = _int_field(item, "leaf_index", "an entry")
            out.append((index, _b64hash(item.get("entry"), f"entry {index}")))
        return out

    def _path(self, body: Any, key: str) -> list[bytes]:
        items = body.get(key) if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise LedgerUnavailable(f"malformed answer: no {key}")
        return [_b64hash(p, key) for p in items]

    def consistency(self, first: int, second: int) -> list[bytes]:
        return self._path(self._get("proof/consistency", first=first, second=second), "consistency_path")

    def inclusion(self, leaf_index: int, tree_size: int) -> list[bytes]:
        return self._path(self._get("proof/inclusion", leaf_index=leaf_index, tree_size=tree_size), "inclusion_path")


class DatabaseSource:
    """Reads the ledger tables of a deployment's database directly (stored nodes serve the proofs)."""

    def __init__(self, kernel: Kernel) -> None:
        self.ledger = kernel.ledger

    def keys(self) -> list[str]:
        published = self.ledger.keys()
        return [k.verifier_key for k in published]

    def tree_heads(self, after: int | None, limit: int) -> list[HeadRecord]:
        return [
            HeadRecord(h.tree_size, h.root_hash, h.timestamp_ms, h.checkpoint) for h in self.ledger.heads(after, limit)
        ]

    def entries(self, start: int, end: int) -> list[tuple[int, bytes]]:
        return self.ledger.entries(start, min(end, start + PAGE - 1))

    def consistency(self, first: int, second: int) -> list[bytes]:
        try:
            return self.ledger.consistency_proof(first, second)
        except Problem as exc:
            raise LedgerMismatch(f"the database cannot prove consistency {first} -> {second}: {exc.detail}") from None

    def inclusion(self, leaf_index: int, tree_size: int) -> list[bytes]:
        try:
            return self.ledger.inclusion_proof(leaf_index, tree_size)
        except Problem as exc:
            raise LedgerMismatch(
                f"the database cannot prove inclusion of entry {leaf_index} in tree {tree_size}: {exc.detail}"
            ) from None


def source_from_url(url: str) -> HttpSource:
    return HttpSource(url)


def source_from_database(kernel: Kernel) -> DatabaseSource:
    return DatabaseSource(kernel)


# ---------------------------------------------------------------------------------------- checks


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _verifiers(source: Source, trusted_keys: list[str] | None) -> list[note.Verifier]:
    if trusted_keys:
        out = []
        for vkey in trusted_keys:
            try:
                out.append(note.Verifier.from_string(vkey))
            except note.NoteError as exc:
                raise LedgerMismatch(f"the trusted key {vkey!r} is not a valid note verifier key: {exc}") from None
        return out
    published = source.keys()
    if not published:
        raise LedgerMismatch("the source publishes no signing keys")
    out = []
    for vkey in published:
        try:
            out.append(note.Verifier.from_string(vkey))
        except note.NoteError as exc:
            raise LedgerMismatch(f"the published key {vkey!r} is malformed: {exc}") from None
    return out


def _all_heads(source: Source) -> Iterator[HeadRecord]:
    after: int | None = None
    while True:
        page = source.tree_heads(after, PAGE)
        if not page:
            return
        for head in page:
            if after is not None and head.tree_size <= after:
                raise LedgerMismatch(
                    f"tree heads are not strictly increasing: size {head.tree_size} follows size {after}"
                )
            after = head.tree_size
            yield head


def _check_head(head: HeadRecord, verifiers: list[note.Verifier]) -> None:
    try:
        cp = note.open_checkpoint(head.checkpoint, verifiers)
    except note.NoteError as exc:
        raise LedgerMismatch(
            f"tree head at size {head.tree_size}: checkpoint signature does not verify ({exc})"
        ) from None
    if cp.tree_size != head.tree_size:
        raise LedgerMismatch(f"tree head at size {head.tree_size}: its signed checkpoint is for size {cp.tree_size}")
    if cp.root_hash != head.root_hash:
        raise LedgerMismatch(
            f"tree head at size {head.tree_size}: root {_b64(head.root_hash)} differs from the signed root "
            f"{_b64(cp.root_hash)}"
        )


def _locate(source: Source, tree: merkle.MemoryTree, lo: int, head: HeadRecord) -> str:
    """Name the first entry in ``[lo, head.tree_size)`` that the signed root does not include."""
    if head.tree_size - lo > LOCATE_LIMIT:
        return ""
    for index in range(lo, head.tree_size):
        try:
            path = source.inclusion(index, head.tree_size)
        except LedgerMismatch:
            return ""
        if not merkle.verify_inclusion(tree.leaf(index), index, head.tree_size, path, head.root_hash):
            return f"; entry {index} is not the leaf that was signed (its inclusion proof fails)"
    return ""


def verify_source(
    source: Source,
    trusted_keys: list[str] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    *,
    sample: int = SERVER_PROOF_SAMPLE,
    rng: random.Random | None = None,
) -> Report:
    """Verify the whole ledger a source serves; raises :class:`LedgerMismatch` on the first failure."""
    progress = on_progress or (lambda _done, _total: None)
    verifiers = _verifiers(source, trusted_keys)

    # 1. Every signed head: signature, stated size and root, strictly increasing sizes.
    heads: list[HeadRecord] = []
    for head in _all_heads(source):
        _check_head(head, verifiers)
        heads.append(head)
    if not heads:
        raise LedgerMismatch("the source has no signed tree head")
    latest = heads[-1]
    total = 2 * len(heads) + 2 * latest.tree_size
    done = 0
    progress(done, total)

    # 2. Consistency between consecutive heads.
    for prev, cur in itertools.pairwise(heads):
        if prev.tree_size > 0:
            path = source.consistency(prev.tree_size, cur.tree_size)
            if not merkle.verify_consistency(prev.tree_size, cur.tree_size, prev.root_hash, cur.root_hash, path):
                raise LedgerMismatch(
                    f"tree head at size {cur.tree_size} is not consistent with the head at size {prev.tree_size}"
                )
        done += 1
        progress(done, total)
    done += 1

    # 3. All entries; the root recomputed at every head's size.
    tree = merkle.MemoryTree()
    pending = iter(heads)
    next_head = next(pending)
    prev_size = 0

    def check_roots_at_current_size() -> None:
        nonlocal next_head, prev_size, done
        while next_head is not None and next_head.tree_size == tree.size:
            computed = tree.root()
            if computed != next_head.root_hash:
                where = _locate(source, tree, prev_size, next_head)
                raise LedgerMismatch(
                    f"tree head at size {next_head.tree_size}: the root recomputed from the entries "
                    f"({_b64(computed)}) differs from the signed root ({_b64(next_head.root_hash)}){where}"
                )
            prev_size = next_head.tree_size
            next_head = next(pending, None)
            done += 1

    check_roots_at_current_size()
    while tree.size < latest.tree_size:
        start = tree.size
        page = source.entries(start, min(start + PAGE, latest.tree_size) - 1)
        if not page:
            raise LedgerMismatch(f"the source returned no entry at index {start} (signed size {latest.tree_size})")
        for index, leaf in page:
            if index != tree.size:
                raise LedgerMismatch(f"expected entry {tree.size}, the source returned entry {index}")
            if index >= latest.tree_size:
                break
            try:
                parse_entry(leaf)
            except EntryError as exc:
                raise LedgerMismatch(f"entry {index} is not a canonical ledger entry: {exc}") from None
            tree.append_entry(leaf)
            done += 1
            check_roots_at_current_size()
        progress(done, total)

    # 4. Inclusion of every entry in the latest head, with RFC 9162 audit paths.
    n = latest.tree_size
    for index in range(n):
        path = tree.inclusion_proof(index, n)
        if not merkle.verify_inclusion(tree.leaf(index), index, n, path, latest.root_hash):
            raise LedgerMismatch(f"entry {index} is not included in the tree head at size {n}")
        done += 1
        if index % 4096 == 4095:
            progress(done, total)

    # ... and the source's own inclusion proofs for a sample of entries, against random heads.
    rng = rng or random.Random()
    indexes = {0, n - 1} if n else set()
    if n:
        indexes.update(rng.randrange(n) for _ in range(sample))
    for index in sorted(indexes):
        candidates = [h for h in heads if h.tree_size > index]
        for head in {latest, rng.choice(candidates)}:
            path = source.inclusion(index, head.tree_size)
            if not merkle.verify_inclusion(tree.leaf(index), index, head.tree_size, path, head.root_hash):
                raise LedgerMismatch(
                    f"the source's inclusion proof for entry {index} in the tree head "
                    f"at size {head.tree_size} does not verify"
                )
    progress(total, total)
    return Report(tree_heads=len(heads), entries=n, tree_size=n, root_b64=_b64(latest.root_hash))
