"""`qorgau verify-ledger`: an auditor checks the whole ledger, from the database or over HTTP."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from qorgau.cli import app as cli
from qorgau.kernel.ledger import merkle, note
from qorgau.kernel.ledger.tables import ledger_entries, ledger_heads, ledger_nodes
from qorgau.kernel.ledger.verify import LedgerMismatch, source_from_database, verify_source
from tests.integration.test_ledger_http import append


@pytest.fixture
def history(kernel: Any) -> Any:
    """A ledger with several signed heads and one key rotation."""
    kernel.ledger.sign_if_grown()
    for n, rotate in ((1, False), (4, False), (7, True), (16, False), (5, False)):
        append(kernel, n)
        if rotate:
            kernel.ledger.rotate_key()
        kernel.ledger.sign_if_grown(force=True)
    return kernel


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["verify-ledger", *args], env={"COLUMNS": "400"})
    text = result.output + (result.stderr if result.stderr_bytes is not None else "")
    return result.exit_code, " ".join(text.split())


def db_args(kernel: Any) -> list[str]:
    return ["--data-dir", str(kernel.settings.data_dir), "--database-url", kernel.settings.resolved_database_url]


def tamper(kernel: Any, stmt: Any) -> None:
    with kernel.db.transaction() as tx:
        tx.execute(stmt)


def test_a_good_ledger_verifies_from_the_database(history: Any) -> None:
    code, out = run_cli(*db_args(history))
    assert code == 0, out
    assert "ledger OK" in out and "6 signed tree heads, 33 entries" in out
    head = history.ledger.latest_head()
    assert head.root_b64 in out


def test_the_verifier_reports_progress_and_counts(history: Any) -> None:
    seen: list[tuple[int, int]] = []
    report = verify_source(source_from_database(history), on_progress=lambda d, t: seen.append((d, t)))
    assert (report.tree_heads, report.entries, report.tree_size) == (6, 33, 33)
    assert seen[-1][0] == seen[-1][1] > 0
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_a_tampered_leaf_is_found_and_named(history: Any) -> None:
    [(_, leaf)] = history.ledger.entries(9, 9)
    forged = leaf.replace(b"case.read", b"case.edit")
    tamper(history, ledger_entries.update().where(ledger_entries.c.leaf_index == 9).values(leaf=forged))
    code, out = run_cli(*db_args(history))
    assert code != 0
    assert "ledger verification FAILED" in out
    assert "tree head at size 12" in out and "entry 9" in out


def test_a_leaf_rewritten_with_its_hash_still_fails(history: Any) -> None:
    [(_, leaf)] = history.ledger.entries(2, 2)
    forged = leaf.replace(b"case.read", b"case.drop")
    tamper(
        history,
        ledger_entries.update()
        .where(ledger_entries.c.leaf_index == 2)
        .values(leaf=forged, leaf_hash=merkle.leaf_hash(forged)),
    )
    code, out = run_cli(*db_args(history))
    assert code != 0 and "entry 2" in out


def test_a_tampered_head_root_fails(history: Any) -> None:
    tamper(history, ledger_heads.update().where(ledger_heads.c.tree_size == 5).values(root_hash=b"\x00" * 32))
    code, out = run_cli(*db_args(history))
    assert code != 0
    assert "tree head at size 5" in out and "signed root" in out


def test_a_tampered_checkpoint_fails_its_signature(history: Any) -> None:
    head = history.ledger.head_at(12)
    forged = head.checkpoint.replace("\n12\n", "\n13\n")
    tamper(history, ledger_heads.update().where(ledger_heads.c.tree_size == 12).values(checkpoint=forged))
    code, out = run_cli(*db_args(history))
    assert code != 0
    assert "tree head at size 12" in out and "signature" in out


def test_a_tampered_inner_node_breaks_the_proofs(history: Any) -> None:
    tamper(
        history,
        ledger_nodes.update()
        .where(ledger_nodes.c.level == 2, ledger_nodes.c.node_index == 0)
        .values(hash=b"\x11" * 32),
    )
    with pytest.raises(LedgerMismatch, match=r"consistent|inclusion"):
        verify_source(source_from_database(history))


def test_a_missing_entry_fails(history: Any) -> None:
    tamper(history, ledger_entries.delete().where(ledger_entries.c.leaf_index == 32))
    code, out = run_cli(*db_args(history))
    assert code != 0
    # Either the proof service (it needs that leaf) or the entry listing notices first.
    assert "cannot prove consistency 28 -> 33" in out or "no entry at index 32" in out


def test_only_the_given_key_is_trusted(history: Any) -> None:
    stranger = note.Signer(note.generate_seed(), history.settings.ledger_origin)
    code, out = run_cli(*db_args(history), "--key", stranger.verifier_key)
    assert code != 0
    assert "tree head at size 0" in out and "signature" in out

    # The deployment's own keys (both, since it rotated) are enough; one of them alone is not.
    published = [k.verifier_key for k in list(history.ledger.keys())]
    args = [a for vk in published for a in ("--key", vk)]
    code, out = run_cli(*db_args(history), *args)
    assert code == 0, out
    code, out = run_cli(*db_args(history), "--key", published[-1])
    assert code != 0 and "signature" in out

    code, out = run_cli(*db_args(history), "--key", "not-a-key")
    assert code != 0 and "not a valid note verifier key" in out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(history: Any) -> Iterator[str]:
    import uvicorn

    from qorgau.app import create_app

    port = _free_port()
    srv = uvicorn.Server(
        uvicorn.Config(create_app(kernel=history), host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(timeout=20)


def test_a_running_deployment_verifies_over_http(server: str, history: Any) -> None:
    code, out = run_cli("--url", server)
    assert code == 0, out
    assert "ledger OK" in out and "33 entries" in out

    published = [k.verifier_key for k in list(history.ledger.keys())]
    code, out = run_cli("--url", server, *[a for vk in published for a in ("--key", vk)])
    assert code == 0, out

    stranger = note.Signer(note.generate_seed(), history.settings.ledger_origin)
    code, out = run_cli("--url", server, "--key", stranger.verifier_key)
    assert code != 0 and "signature" in out


def test_a_tampered_leaf_is_caught_over_http(server: str, history: Any) -> None:
    [(_, leaf)] = history.ledger.entries(20, 20)
    tamper(
        history,
        ledger_entries.update().where(ledger_entries.c.leaf_index == 20).values(leaf=leaf.replace(b"read", b"seen")),
    )
    code, out = run_cli("--url", server)
    assert code != 0 and "entry 20" in out


def test_an_unreachable_server_is_a_clear_error() -> None:
    code, out = run_cli("--url", f"http://127.0.0.1:{_free_port()}")
    assert code != 0 and "cannot reach" in out


def test_url_and_database_together_are_refused(history: Any) -> None:
    code, out = run_cli("--url", "http://127.0.0.1:1", *db_args(history))
    assert code != 0 and "either --url" in out


def test_the_stored_history_matches_what_the_cli_counted(history: Any) -> None:
    with history.db.read() as conn:
        sizes = [int(s) for s in conn.execute(sa.select(ledger_heads.c.tree_size).order_by("tree_size")).scalars()]
    assert sizes == [0, 1, 5, 12, 28, 33]
