"""Where encrypted values live, so `qorgau keys rewrap` can move every data key to the newest KEK.

Each service registers the columns it seals with `row_aad(table, column, row id)`; rewrap walks them
in pages, re-wrapping only the data key (the ciphertext is untouched).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa

from qorgau.kernel.crypto import blob_kid, rewrap, row_aad

if TYPE_CHECKING:
    from qorgau.kernel.context import Kernel


@dataclass(frozen=True)
class SealedColumn:
    table: sa.Table
    column: str
    id_column: str = "id"


_REGISTRY: list[SealedColumn] = []


def register_sealed_column(table: sa.Table, column: str, id_column: str = "id") -> None:
    """Declare that `table.column` holds envelope blobs bound to `row_aad(table, column, id)`."""
    entry = SealedColumn(table, column, id_column)
    if entry not in _REGISTRY:
        _REGISTRY.append(entry)


def sealed_columns() -> list[SealedColumn]:
    return list(_REGISTRY)


def count_sealed(kernel: Kernel) -> int:
    total = 0
    with kernel.db.read() as conn:
        for sc in _REGISTRY:
            col = sc.table.c[sc.column]
            total += conn.execute(sa.select(sa.func.count()).select_from(sc.table).where(col.is_not(None))).scalar_one()
    return total


def rewrap_all(kernel: Kernel, *, page: int = 500, on_progress: Callable[[int], None] | None = None) -> int:
    """Re-wrap every sealed value whose data key is not under the current KEK; returns how many."""
    current = kernel.keyring.current.kid
    changed = 0
    for sc in _REGISTRY:
        col = sc.table.c[sc.column]
        idc = sc.table.c[sc.id_column]
        last = None
        while True:
            query = sa.select(idc, col).where(col.is_not(None)).order_by(idc).limit(page)
            if last is not None:
                query = query.where(idc > last)
            with kernel.db.read() as conn:
                rows = conn.execute(query).all()
            if not rows:
                break
            last = rows[-1][0]
            updates = []
            for row_id, blob in rows:
                if blob_kid(blob) != current:
                    updates.append((row_id, rewrap(kernel.keyring, blob, row_aad(sc.table.name, sc.column, row_id))))

            def write(tx, updates=updates, sc=sc, col=col, idc=idc) -> None:  # type: ignore[no-untyped-def]
                for row_id, blob in updates:
                    tx.execute(sc.table.update().where(idc == row_id).values({col.name: blob}))

            if updates:
                kernel.db.run(write)
            changed += len(updates)
            if on_progress:
                on_progress(len(rows))
    return changed
