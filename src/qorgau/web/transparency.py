"""The public "Transparency log" page: the current signed tree head and an inclusion check anyone can run.

The server shows the entry, its inclusion path and the signed root; the browser recomputes the root
from them itself (static/verify.js, WebCrypto SHA-256), so a visitor need not trust this server's word.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from litestar import Request, Response, get

from qorgau.kernel.auth.policy import require
from qorgau.kernel.errors import Problem
from qorgau.kernel.ledger import merkle
from qorgau.web.http import kernel_of, request_actor
from qorgau.web.render import render


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@get("/transparency", sync_to_thread=True)
def transparency(request: Request[Any, Any, Any], index: str | None = None) -> Response[str]:
    require(request_actor(request), "ledger.read")
    ledger = kernel_of(request).ledger
    head = ledger.latest_head() or ledger.sign_if_grown(force=True)
    check: dict[str, Any] | None = None
    error: Problem | None = None
    if index not in (None, ""):
        try:
            leaf_index = int(index)  # type: ignore[arg-type]
            if head is None or not 0 <= leaf_index < head.tree_size:
                raise ValueError
        except ValueError:
            error = Problem("ledger.out_of_range", field="index")
        else:
            [(_, leaf)] = ledger.entries(leaf_index, leaf_index)
            path = ledger.inclusion_proof(leaf_index, head.tree_size)
            leaf_hash = merkle.leaf_hash(leaf)
            check = {
                "index": leaf_index,
                "entry": json.loads(leaf),
                "entry_text": leaf.decode(),
                "entry_b64": _b64(leaf),
                "leaf_hash": _b64(leaf_hash),
                "path": [_b64(p) for p in path],
                "verified": merkle.verify_inclusion(leaf_hash, leaf_index, head.tree_size, path, head.root_hash),
            }
    return render(
        request,
        "transparency.html",
        head=head,
        root_b64=_b64(head.root_hash) if head else "",
        keys=ledger.keys(),
        check=check,
        error=error,
        index=index or "",
    )


ROUTES = [transparency]
