"""Server-side search of room events (POST /search), for rooms the server can read.

Bodies are sealed at rest, so there is no plain-text index. We scan the user's joined rooms newest
first, decrypting candidates (through the shared content cache) and matching words, at most
`SCAN_LIMIT` events per request; `next_batch` resumes the scan. A keyed-hash token index would be
faster on very large rooms but tells whoever holds the database which messages share words (and
how often each word occurs) and has to be rebuilt on key rotation and redaction; an official's
rooms are small enough for a bounded scan. End-to-end encrypted messages (m.room.encrypted) are
never candidates: the server cannot read them.
"""

from __future__ import annotations

import unicodedata
from typing import Any

import sqlalchemy as sa

from qorgau.messenger import tables as t
from qorgau.messenger.domain import EventFilter, bad_json, parse_stream_token, stream_token
from qorgau.messenger.services.access import MxCtx, joined_room_ids, require_official
from qorgau.messenger.services.events import events_from_rows, room_events
from qorgau.messenger.services.visibility import Visibility, rooms_visibility

SEARCH_KEYS = {
    "content.body": ("m.room.message", "body"),
    "content.name": ("m.room.name", "name"),
    "content.topic": ("m.room.topic", "topic"),
}
SCAN_LIMIT = 2_000
DEFAULT_LIMIT = 10


def _words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return ["".join(c for c in w if c.isalnum()) for w in folded.split() if any(c.isalnum() for c in w)]


def search(ctx: MxCtx, body: dict[str, Any], next_batch: str | None) -> dict[str, Any]:
    """POST /search over the user's joined rooms: only events their history visibility lets them read."""
    require_official(ctx)
    categories = body.get("search_categories")
    if not isinstance(categories, dict) or not isinstance(categories.get("room_events"), dict):
        raise bad_json("search_categories.room_events is required")
    spec = categories["room_events"]
    term = spec.get("search_term")
    if not isinstance(term, str) or not term.strip():
        raise bad_json("search_term must be a non-empty string")
    keys = spec.get("keys") or list(SEARCH_KEYS)
    if not isinstance(keys, list) or any(k not in SEARCH_KEYS for k in keys):
        raise bad_json(f"keys must be among {sorted(SEARCH_KEYS)}")
    event_filter = EventFilter.parse(spec.get("filter"), "filter")
    limit = min(event_filter.limit or DEFAULT_LIMIT, 50)
    context = spec.get("event_context")
    before_limit = after_limit = 0
    if isinstance(context, dict):
        before_limit = min(int(context.get("before_limit", 5) or 0), 20)
        after_limit = min(int(context.get("after_limit", 5) or 0), 20)
    words = _words(term)
    fields = {SEARCH_KEYS[k][0]: SEARCH_KEYS[k][1] for k in keys}
    before = parse_stream_token(next_batch, "next_batch") if next_batch else None
    kernel = ctx.kernel
    e = t.events
    results: list[dict[str, Any]] = []
    scanned = 0
    resume: int | None = None
    with kernel.db.read() as conn:
        rooms = [r for r in joined_room_ids(conn, ctx.user_id) if event_filter.allows_room(r)]
        hidden = rooms_visibility(kernel, conn, rooms, ctx.user_id)
        if rooms:
            query = sa.select(e).where(e.c.room_id.in_(rooms), e.c.type.in_(list(fields)), e.c.redacted_by.is_(None))
            if hidden:
                # Rooms readable in full need no condition; the others keep only what the user may read.
                restricted = [sa.and_(e.c.room_id == r, v.clause(e)) for r, v in hidden.items()]
                query = query.where(sa.or_(e.c.room_id.not_in(list(hidden)), *restricted))
            if before is not None:
                query = query.where(e.c.stream_id < before)
            if event_filter.senders is not None:
                query = query.where(e.c.sender.in_(event_filter.senders))
            result = conn.execute(query.order_by(e.c.stream_id.desc()))
            for chunk in result.partitions(200):
                for event in events_from_rows(kernel, conn, chunk):
                    scanned += 1
                    text = event.content.get(fields[event.type])
                    if not isinstance(text, str) or not event_filter.allows(event.type, event.sender):
                        continue
                    found = _words(text)
                    if all(any(w in f for f in found) for w in words):
                        item: dict[str, Any] = {"rank": 1.0, "result": event.to_dict()}
                        if before_limit or after_limit:
                            visibility = hidden.get(event.room_id)
                            item["context"] = _context(ctx, conn, event, before_limit, after_limit, visibility)
                        results.append(item)
                    if len(results) >= limit or scanned >= SCAN_LIMIT:
                        resume = event.stream_id
                        break
                if resume is not None:
                    break
            result.close()
    out: dict[str, Any] = {"results": results, "count": len(results), "highlights": words}
    if resume is not None:
        out["next_batch"] = stream_token(resume)
    return {"search_categories": {"room_events": out}}


def _context(
    ctx: MxCtx, conn: Any, event: Any, before_limit: int, after_limit: int, visibility: Visibility | None
) -> dict[str, Any]:
    kernel = ctx.kernel
    room_id, at = event.room_id, event.stream_id
    before = room_events(kernel, conn, room_id, upto=at - 1, limit=before_limit, backwards=True, visibility=visibility)
    after = room_events(kernel, conn, room_id, after=at, limit=after_limit, backwards=False, visibility=visibility)
    return {
        "events_before": [e.to_dict() for e in before],
        "events_after": [e.to_dict() for e in after],
        "start": stream_token(event.stream_id - 1 - len(before)),
        "end": stream_token(after[-1].stream_id if after else event.stream_id),
    }
