"""The transparency log on a real database (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import threading
from typing import Any

import pytest
import sqlalchemy as sa
from pymerkle import InmemoryTree

from qorgau.kernel.context import build_kernel
from qorgau.kernel.crypto import row_aad, unseal
from qorgau.kernel.keys import count_sealed, sealed_columns
from qorgau.kernel.ledger import merkle, note
from qorgau.kernel.ledger.entry import PiiError, parse_entry
from qorgau.kernel.ledger.tables import ledger_entries, ledger_heads, ledger_keys, ledger_nodes


def append(kernel: Any, n: int = 1, **obj: Any) -> list[int]:
    """Append `n` entries through the group-commit writer, one job each."""
    return [
        kernel.writer.run(
            lambda tx, i=i: kernel.ledger.append(
                tx, entry_type="access", actor="official:ab12", action="case.read", subject="cd34", obj={"i": i, **obj}
            )
        )
        for i in range(n)
    ]


def all_leaves(kernel: Any) -> list[bytes]:
    size = kernel.ledger.size()
    return [leaf for _, leaf in kernel.ledger.entries(0, size - 1)] if size else []


def verifiers(kernel: Any) -> list[note.Verifier]:
    published = kernel.ledger.keys()
    return [note.Verifier.from_string(k.verifier_key) for k in published]


def test_concurrent_appends_get_gapless_indexes_and_the_stored_root_matches(kernel: Any) -> None:
    threads, per_thread = 12, 25
    got: list[int] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        mine = append(kernel, per_thread, thread=t)
        with lock:
            got.extend(mine)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()

    n = threads * per_thread
    assert sorted(got) == list(range(n))
    assert kernel.ledger.size() == n
    leaves = all_leaves(kernel)
    assert len(leaves) == n
    expected = merkle.root([merkle.leaf_hash(leaf) for leaf in leaves])
    assert kernel.ledger.root_at(n) == expected
    # An independent implementation agrees (pymerkle: RFC 9162 hashing with 0x00/0x01 prefixes).
    independent = InmemoryTree(algorithm="sha256")
    for leaf in leaves:
        independent.append_entry(leaf)
    assert independent.get_root(n) == expected
    assert kernel.ledger.root_at(n // 3) == independent.get_root(n // 3)


def test_entries_are_canonical_json_with_the_six_keys(kernel: Any) -> None:
    append(kernel, 3)
    for leaf in all_leaves(kernel):
        parsed = parse_entry(leaf)
        assert set(parsed) == {"type", "at", "actor", "subject", "action", "object"}
        assert parsed["at"].endswith("Z")


def test_several_appends_in_one_transaction_are_consecutive(kernel: Any) -> None:
    append(kernel, 2)

    def many(tx: Any) -> list[int]:
        return [
            kernel.ledger.append(tx, entry_type="decision", actor="platform", action="x", subject=None, obj={"k": k})
            for k in range(7)
        ]

    assert kernel.db.run(many) == list(range(2, 9))
    assert kernel.writer.run(many) == list(range(9, 16))
    assert kernel.ledger.root_at(16) == merkle.root([merkle.leaf_hash(x) for x in all_leaves(kernel)])


def test_a_rolled_back_transaction_leaves_no_entry_and_no_gap(kernel: Any) -> None:
    append(kernel, 3)

    def fails(tx: Any) -> None:
        kernel.ledger.append(tx, entry_type="decision", actor="platform", action="x", subject=None, obj={})
        raise RuntimeError("the change being recorded failed")

    with pytest.raises(RuntimeError):
        kernel.db.run(fails)
    with pytest.raises(RuntimeError):
        kernel.writer.run(fails)
    assert kernel.ledger.size() == 3
    assert append(kernel, 1) == [3]


def test_a_failing_job_in_a_group_commit_batch_leaves_no_gap(kernel: Any) -> None:
    def ok(tx: Any, i: int) -> int:
        return kernel.ledger.append(tx, entry_type="decision", actor="platform", action="x", subject=None, obj={"i": i})

    def bad(tx: Any) -> int:
        ok(tx, -1)
        raise RuntimeError("this change is refused")

    futures = [kernel.writer.submit(bad if i % 7 == 3 else (lambda tx, i=i: ok(tx, i))) for i in range(60)]
    results = []
    for i, fut in enumerate(futures):
        if i % 7 == 3:
            with pytest.raises(RuntimeError):
                fut.result()
        else:
            results.append(fut.result())
    assert sorted(results) == list(range(len(results)))
    leaves = all_leaves(kernel)
    assert len(leaves) == len(results)
    assert all(parse_entry(leaf)["object"]["i"] >= 0 for leaf in leaves)
    assert kernel.ledger.root_at(len(leaves)) == merkle.root([merkle.leaf_hash(x) for x in leaves])
    assert append(kernel, 1) == [len(results)]


def test_clear_personal_data_is_refused_and_nothing_is_written(kernel: Any) -> None:
    with pytest.raises(PiiError):
        kernel.writer.run(
            lambda tx: kernel.ledger.append(
                tx, entry_type="access", actor="x", action="read", subject=None, obj={"iin": "900101300123"}
            )
        )
    assert kernel.ledger.size() == 0


def test_another_process_appending_in_between_is_seen(kernel: Any) -> None:
    other = build_kernel(kernel.settings)
    try:
        for _ in range(5):
            append(kernel, 3)
            append(other, 2)
        assert kernel.ledger.size() == other.ledger.size() == 25
        leaves = all_leaves(kernel)
        root = merkle.root([merkle.leaf_hash(x) for x in leaves])
        assert kernel.ledger.root_at(25) == other.ledger.root_at(25) == root
    finally:
        other.close()


def test_the_empty_log_gets_a_signed_head(kernel: Any) -> None:
    assert kernel.ledger.latest_head() is None
    head = kernel.ledger.sign_if_grown()
    assert head is not None and head.tree_size == 0
    assert head.root_hash == merkle.EMPTY_ROOT
    cp = note.open_checkpoint(head.checkpoint, verifiers(kernel))
    assert (cp.origin, cp.tree_size, cp.root_hash) == (kernel.settings.ledger_origin, 0, merkle.EMPTY_ROOT)
    assert kernel.ledger.sign_if_grown(force=True) is None  # not grown: never a second head of size 0


def test_heads_are_signed_only_when_grown_and_have_increasing_sizes(kernel: Any) -> None:
    kernel.settings = dataclasses.replace(kernel.settings, ledger_sign_interval_ms=60_000)
    first = kernel.ledger.sign_if_grown()
    assert first is not None
    append(kernel, 4)
    assert kernel.ledger.sign_if_grown() is None  # grown, but signed less than an interval ago
    forced = kernel.ledger.sign_if_grown(force=True)
    assert forced is not None and forced.tree_size == 4
    assert kernel.ledger.sign_if_grown(force=True) is None  # not grown
    append(kernel, 3)
    assert kernel.ledger.sign_if_grown(force=True).tree_size == 7  # type: ignore[union-attr]

    heads = kernel.ledger.heads(None, 100)
    assert [h.tree_size for h in heads] == [0, 4, 7]
    assert kernel.ledger.latest_head() == heads[-1]
    assert [h.tree_size for h in kernel.ledger.heads(0, 100)] == [4, 7]
    assert [h.tree_size for h in kernel.ledger.heads(None, 1)] == [0]
    vs = verifiers(kernel)
    for h in heads:
        cp = note.open_checkpoint(h.checkpoint, vs)
        assert (cp.tree_size, cp.root_hash) == (h.tree_size, h.root_hash)
        assert h.root_hash == kernel.ledger.root_at(h.tree_size)


def test_the_interval_allows_a_new_head_once_it_has_passed(kernel: Any) -> None:
    kernel.settings = dataclasses.replace(kernel.settings, ledger_sign_interval_ms=1)
    kernel.ledger.sign_if_grown()
    append(kernel, 1)
    import time

    time.sleep(0.01)
    head = kernel.ledger.sign_if_grown()
    assert head is not None and head.tree_size == 1


def test_signers_racing_with_appends_publish_strictly_increasing_heads(kernel: Any) -> None:
    other = build_kernel(kernel.settings)
    stop = threading.Event()
    errors: list[BaseException] = []

    def sign(k: Any) -> None:
        try:
            while not stop.is_set():
                k.ledger.sign_if_grown(force=True)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    signers = [threading.Thread(target=sign, args=(k,)) for k in (kernel, kernel, other)]
    for th in signers:
        th.start()
    try:
        for _ in range(10):
            append(kernel, 3)
            append(other, 2)
    finally:
        stop.set()
        for th in signers:
            th.join()
        other.close()
    assert not errors
    kernel.ledger.sign_if_grown(force=True)
    heads = kernel.ledger.heads(None, 1000)
    sizes = [h.tree_size for h in heads]
    assert sizes == sorted(set(sizes))
    assert sizes[-1] == 50
    vs = verifiers(kernel)
    for h in heads:
        assert note.open_checkpoint(h.checkpoint, vs).root_hash == h.root_hash == kernel.ledger.root_at(h.tree_size)


def test_every_proof_matches_the_rfc_algorithms(kernel: Any) -> None:
    append(kernel, 37)
    leaves = all_leaves(kernel)
    tree = merkle.MemoryTree.from_entries(leaves)
    for n in range(1, 38):
        root = kernel.ledger.root_at(n)
        assert root == tree.root(n)
        for i in range(n):
            path = kernel.ledger.inclusion_proof(i, n)
            assert merkle.verify_inclusion(merkle.leaf_hash(leaves[i]), i, n, path, root)
        for m in range(1, n + 1):
            path = kernel.ledger.consistency_proof(m, n)
            assert merkle.verify_consistency(m, n, tree.root(m), root, path)
            assert path == tree.consistency_proof(m, n)
    assert kernel.ledger.root_at(0) == merkle.EMPTY_ROOT


def test_proofs_beyond_the_log_are_refused(kernel: Any) -> None:
    from qorgau.kernel.errors import Problem

    append(kernel, 5)
    for call in (
        lambda: kernel.ledger.inclusion_proof(5, 5),
        lambda: kernel.ledger.inclusion_proof(0, 6),
        lambda: kernel.ledger.consistency_proof(0, 5),
        lambda: kernel.ledger.consistency_proof(3, 6),
        lambda: kernel.ledger.root_at(6),
    ):
        with pytest.raises(Problem) as info:
            call()
        assert info.value.code == "ledger.out_of_range"


def test_storage_keeps_leaves_and_only_inner_nodes(kernel: Any) -> None:
    append(kernel, 8)
    with kernel.db.read() as conn:
        levels = conn.execute(
            sa.select(ledger_nodes.c.level, sa.func.count()).group_by(ledger_nodes.c.level).order_by("level")
        ).all()
        stored = conn.execute(
            sa.select(ledger_entries.c.leaf_index, ledger_entries.c.leaf_hash).order_by(ledger_entries.c.leaf_index)
        ).all()
    assert [(int(lv), int(c)) for lv, c in levels] == [(1, 4), (2, 2), (3, 1)]
    leaves = kernel.ledger.entries(0, 7)
    assert [bytes(h) for _, h in stored] == [merkle.leaf_hash(leaf) for _, leaf in leaves]


def test_leaf_index_by_hash_finds_the_first_of_identical_leaves(kernel: Any) -> None:
    append(kernel, 3)
    leaves = all_leaves(kernel)
    assert kernel.ledger.leaf_index_of(merkle.leaf_hash(leaves[2])) == 2
    assert kernel.ledger.leaf_index_of(b"\x00" * 32) is None
    # Identical records in the same millisecond are two leaves with one hash.
    with kernel.db.transaction() as tx:
        tx.execute(
            ledger_entries.insert(),
            {"leaf_index": 3, "leaf": leaves[1], "leaf_hash": merkle.leaf_hash(leaves[1])},
        )
    assert kernel.ledger.leaf_index_of(merkle.leaf_hash(leaves[1])) == 1


def test_the_signing_key_is_stored_sealed_and_covered_by_rewrap(kernel: Any) -> None:
    kernel.ledger.sign_if_grown()
    [key] = kernel.ledger.keys()
    with kernel.db.read() as conn:
        row = conn.execute(sa.select(ledger_keys)).one()
    seed = unseal(kernel.keyring, bytes(row.seed_enc), row_aad("ledger_keys", "seed_enc", row.key_hash))
    signer = note.Signer(seed, kernel.settings.ledger_origin)
    assert signer.public_key == key.public_key == bytes(row.public_key)
    assert seed not in bytes(row.seed_enc)
    assert any(sc.table is ledger_keys and sc.column == "seed_enc" for sc in sealed_columns())
    assert count_sealed(kernel) >= 1


def test_a_second_process_signs_with_the_same_key(kernel: Any) -> None:
    kernel.ledger.sign_if_grown()
    other = build_kernel(kernel.settings)
    try:
        append(other, 2)
        head = other.ledger.sign_if_grown(force=True)
        assert head is not None
        assert len(kernel.ledger.keys()) == 1
        assert head.key_hash == kernel.ledger.keys()[0].key_hash
    finally:
        other.close()


def test_rotated_keys_stay_published_and_old_heads_still_verify(kernel: Any) -> None:
    first_head = kernel.ledger.sign_if_grown()
    old = kernel.ledger.current_key()
    new = kernel.ledger.rotate_key()
    assert new.key_hash != old.key_hash
    append(kernel, 2)
    second_head = kernel.ledger.sign_if_grown(force=True)
    assert second_head is not None and second_head.key_hash == new.key_hash

    keys = kernel.ledger.keys()
    assert [k.key_hash for k in keys] == [old.key_hash, new.key_hash]
    assert keys[0].valid_until is not None and keys[0].valid_until >= keys[0].valid_from
    assert keys[1].valid_until is None
    old_v = note.Verifier.from_string(keys[0].verifier_key)
    new_v = note.Verifier.from_string(keys[1].verifier_key)
    assert first_head is not None
    note.open_checkpoint(first_head.checkpoint, [old_v])
    note.open_checkpoint(second_head.checkpoint, [new_v])
    with pytest.raises(note.NoteError):
        note.open_checkpoint(second_head.checkpoint, [old_v])


def test_a_new_origin_gets_a_new_key(kernel: Any) -> None:
    kernel.ledger.sign_if_grown()
    kernel.settings = dataclasses.replace(kernel.settings, ledger_origin="ledger.test.kz")
    append(kernel, 1)
    head = kernel.ledger.sign_if_grown(force=True)
    assert head is not None and head.checkpoint.startswith("ledger.test.kz\n1\n")
    keys = kernel.ledger.keys()
    assert [k.origin for k in keys] == [keys[0].origin, "ledger.test.kz"]
    assert keys[0].valid_until is not None


def test_the_background_signer_survives_errors(kernel: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = kernel.ledger.sign_if_grown

    def flaky(force: bool = False) -> Any:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database went away")
        return real(force)

    monkeypatch.setattr(kernel.ledger, "sign_if_grown", flaky)
    append(kernel, 2)

    async def run() -> None:
        task = asyncio.create_task(kernel.ledger.run_signer())
        for _ in range(200):
            await asyncio.sleep(0.01)
            head = kernel.ledger.latest_head()
            if head is not None and head.tree_size == 2:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run())
    assert len(calls) >= 2
    head = kernel.ledger.latest_head()
    assert head is not None and head.tree_size == 2


def test_tree_head_root_is_standard_base64(kernel: Any) -> None:
    head = kernel.ledger.sign_if_grown()
    assert head is not None
    assert head.root_b64 == base64.b64encode(head.root_hash).decode()
    with kernel.db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ledger_heads)).scalar_one() == 1
