"""The ledger's public, read-only HTTP API (RFC 9162-style answers over C2SP checkpoints).

Hashes are standard padded base64 of 32 bytes; proofs are in RFC 9162 order.  Every range is
bounded by the latest *signed* tree size, so each answer can be checked against a signed head.
Query parameters are parsed here, not by the framework, so that anything missing, malformed or out
of range (negative, not a number, above 2**63 - 1) is a 400 problem+json naming the parameter.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any

from litestar import Request, get

from qorgau.kernel.errors import Problem
from qorgau.kernel.ledger.entry import format_at
from qorgau.kernel.ledger.log import KeyInfo, Ledger, TreeHead
from qorgau.web.http import kernel_of

PREFIX = "/api/v1/ledger"
MAX_ENTRIES = 1000
MAX_HEADS = 1000
DEFAULT_HEADS = 100
MAX_INT64 = 2**63 - 1
_DIGITS = re.compile(r"[0-9]{1,19}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _rfc3339(ms: int) -> str:
    return format_at(datetime.fromtimestamp(ms // 1000, UTC).replace(microsecond=(ms % 1000) * 1000))


def _int(name: str, raw: str | None, *, default: int | None = None, minimum: int = 0) -> int:
    """A non-negative decimal integer up to 2**63 - 1, or a 400 naming the parameter."""
    if raw is None or raw == "":
        if default is not None:
            return default
        raise Problem("validation.parameter", field=name, detail=f"{name} is required")
    if not _DIGITS.fullmatch(raw) or int(raw) > MAX_INT64:
        raise Problem("validation.parameter", field=name, detail=f"{name} must be a decimal integer from 0 to 2^63-1")
    value = int(raw)
    if value < minimum:
        raise Problem("validation.parameter", field=name, detail=f"{name} must be at least {minimum}")
    return value


def _hash_param(name: str, raw: str) -> bytes:
    # A '+' sent unescaped in a query string arrives as a space; accept it as the '+' it was.
    text = raw.replace(" ", "+")
    try:
        value = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        value = b""
    if len(value) != 32:
        raise Problem("validation.parameter", field=name, detail=f"{name} must be base64 of 32 bytes")
    return value


def _ledger(request: Request[Any, Any, Any]) -> Ledger:
    return kernel_of(request).ledger


def _signed(ledger: Ledger) -> TreeHead:
    """The latest signed head, signing the first one (the empty log's) if none exists yet."""
    head = ledger.latest_head()
    if head is None:
        head = ledger.sign_if_grown(force=True) or ledger.latest_head()
    if head is None:  # pragma: no cover - a head was just signed by someone
        raise Problem("unavailable", detail="no signed tree head yet")
    return head


def _head_json(head: TreeHead) -> dict[str, Any]:
    return {
        "tree_size": head.tree_size,
        "root_hash": _b64(head.root_hash),
        "timestamp": head.timestamp_ms,
        "checkpoint": head.checkpoint,
    }


def _key_json(key: KeyInfo) -> dict[str, Any]:
    return {
        "origin": key.origin,
        "algorithm": "Ed25519",
        "public_key": _b64(key.public_key),
        "key_hash": key.key_hash,
        "verifier_key": key.verifier_key,
        "valid_from": _rfc3339(key.valid_from),
        "valid_until": None if key.valid_until is None else _rfc3339(key.valid_until),
    }


def _out_of_range(name: str, detail: str) -> Problem:
    return Problem("ledger.out_of_range", field=name, detail=detail)


@get(f"{PREFIX}/keys", sync_to_thread=True)
def ledger_keys(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Every note-signing key the log has used, the current one last (``valid_until`` null)."""
    ledger = _ledger(request)
    _signed(ledger)  # makes sure the first key exists
    published = ledger.keys()
    return {"keys": [_key_json(k) for k in published]}


@get(f"{PREFIX}/checkpoint", sync_to_thread=True, media_type="text/plain")  # Litestar adds "; charset=utf-8"
def checkpoint(request: Request[Any, Any, Any]) -> str:
    """The latest signed checkpoint (C2SP tlog-checkpoint signed note)."""
    return _signed(_ledger(request)).checkpoint


@get(f"{PREFIX}/tree-head", sync_to_thread=True)
def tree_head(request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The latest signed tree head."""
    return _head_json(_signed(_ledger(request)))


@get(f"{PREFIX}/tree-heads", sync_to_thread=True)
def tree_heads(request: Request[Any, Any, Any], after: str | None = None, limit: str | None = None) -> dict[str, Any]:
    """Signed heads with ``tree_size > after`` (from the first when absent), oldest first."""
    after_size = None if after in (None, "") else _int("after", after)
    count = _int("limit", limit, default=DEFAULT_HEADS, minimum=1)
    if count > MAX_HEADS:
        raise Problem("validation.parameter", field="limit", detail=f"limit must be at most {MAX_HEADS}")
    ledger = _ledger(request)
    _signed(ledger)
    return {"tree_heads": [_head_json(h) for h in ledger.heads(after_size, count)]}


@get(f"{PREFIX}/entries", sync_to_thread=True)
def entries(request: Request[Any, Any, Any], start: str | None = None, end: str | None = None) -> dict[str, Any]:
    """Entries ``start..end`` (inclusive); may stop early (at most 1,000, never past the signed size)."""
    first = _int("start", start)
    last = _int("end", end)
    if last < first:
        raise Problem("validation.parameter", field="end", detail="end must not be less than start")
    ledger = _ledger(request)
    size = _signed(ledger).tree_size
    if first >= size:
        raise _out_of_range("start", f"start must be less than the signed tree size {size}")
    last = min(last, size - 1, first + MAX_ENTRIES - 1)
    return {"entries": [{"leaf_index": i, "entry": _b64(leaf)} for i, leaf in ledger.entries(first, last)]}


@get(f"{PREFIX}/proof/inclusion", sync_to_thread=True)
def inclusion(
    request: Request[Any, Any, Any],
    leaf_index: str | None = None,
    tree_size: str | None = None,
    hash: str | None = None,
) -> dict[str, Any]:
    """PATH(leaf_index, D[tree_size]) for ``leaf_index < tree_size <= signed size``; or by leaf hash."""
    size = _int("tree_size", tree_size, minimum=1)
    ledger = _ledger(request)
    if hash not in (None, "") and leaf_index not in (None, ""):
        raise Problem("validation.parameter", field="hash", detail="give leaf_index or hash, not both")
    if hash not in (None, ""):
        found = ledger.leaf_index_of(_hash_param("hash", hash))  # type: ignore[arg-type]
        if found is None:
            raise Problem("ledger.not_found", field="hash", detail="no entry has this leaf hash")
        index = found
    else:
        index = _int("leaf_index", leaf_index)
    signed = _signed(ledger).tree_size
    if size > signed:
        raise _out_of_range("tree_size", f"tree_size must be at most the signed tree size {signed}")
    if index >= size:
        raise _out_of_range("leaf_index" if hash in (None, "") else "hash", "the leaf is not in a tree of this size")
    path = ledger.inclusion_proof(index, size)
    return {"leaf_index": index, "tree_size": size, "inclusion_path": [_b64(p) for p in path]}


@get(f"{PREFIX}/proof/consistency", sync_to_thread=True)
def consistency(request: Request[Any, Any, Any], first: str | None = None, second: str | None = None) -> dict[str, Any]:
    """PROOF(first, D[second]) for ``0 < first <= second <= signed size``."""
    m = _int("first", first, minimum=1)
    n = _int("second", second, minimum=1)
    if m > n:
        raise Problem("validation.parameter", field="first", detail="first must not exceed second")
    signed = _signed(_ledger(request)).tree_size
    if n > signed:
        raise _out_of_range("second", f"second must be at most the signed tree size {signed}")
    path = _ledger(request).consistency_proof(m, n)
    return {"first": m, "second": n, "consistency_path": [_b64(p) for p in path]}


ROUTES = [ledger_keys, checkpoint, tree_head, tree_heads, entries, inclusion, consistency]
