"""The operator's `qorgau` command against a deployment's data dir or database URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from typer.testing import CliRunner

from qorgau.cli import app

runner = CliRunner()


def run(*args: str, stdin: str | None = None) -> Any:
    return runner.invoke(app, list(args), input=stdin, catch_exceptions=False)


def target(settings: Any) -> list[str]:
    return ["--data-dir", str(settings.data_dir), "--database-url", settings.database_url]


def test_operator_creates_lists_and_promotes_an_account(kernel: Any, settings: Any, demo: Any) -> None:
    created = run("users", "create", "--username", "Erlan.B", "--role", "official", "--agency", "astana-digital",
                  "--password-stdin", *target(settings), stdin="a-long-password\n")  # fmt: skip
    assert created.exit_code == 0, created.output
    listed = run("users", "list", *target(settings))
    assert "erlan.b" in listed.output and "official" in listed.output
    promoted = run("users", "set-role", "--username", "erlan.b", "--role", "agency_admin", *target(settings))
    assert promoted.exit_code == 0, promoted.output
    with kernel.db.read() as conn:
        role = conn.execute(sa.text("SELECT role FROM users WHERE username = 'erlan.b'")).scalar_one()
    assert role == "agency_admin"


def test_bad_input_is_a_clear_message_and_non_zero_exit(settings: Any, demo: Any) -> None:
    cases = [
        (["users", "create", "--username", "user.one", "--role", "wizard", "--password-stdin"], "Unknown role"),
        (["users", "create", "--username", "user.two", "--role", "official", "--password-stdin"], "agency"),
        (["users", "create", "--username", "admin", "--role", "guard", "--password-stdin"], "already taken"),
        (["users", "create", "--username", "user.three", "--role", "guard"], "--password-stdin"),
        (["users", "set-role", "--username", "nobody", "--role", "guard"], "no such user"),
    ]
    for args, message in cases:
        result = run(*args, *target(settings), stdin="a-long-password\n")
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
    short = run("users", "create", "--username", "user.four", "--role", "guard", "--password-stdin", *target(settings),
                stdin="short\n")  # fmt: skip
    assert short.exit_code != 0 and "too short" in short.output


def test_a_bad_setting_is_named_and_exits_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["users", "list", "--data-dir", str(tmp_path)], env={"QORGAU_PORT": "eighty"})
    assert result.exit_code == 2
    assert "QORGAU_PORT" in result.output


def test_commands_refuse_an_unmigrated_database(tmp_path: Path) -> None:
    result = run("users", "list", "--data-dir", str(tmp_path / "empty"))
    assert result.exit_code != 0 and "qorgau migrate" in result.output


def test_key_rotation_keeps_old_data_readable_and_rewrap_moves_it(kernel: Any, settings: Any, demo: Any) -> None:
    from qorgau.kernel.auth import services as auth
    from qorgau.kernel.context import build_kernel
    from qorgau.kernel.crypto import blob_kid

    old_kid = kernel.keyring.current.kid
    rotated = run("keys", "rotate", *target(settings))
    assert rotated.exit_code == 0, rotated.output
    fresh = build_kernel(settings, start_writer=False)
    try:
        new_kid = fresh.keyring.current.kid
        assert new_kid != old_kid and old_kid in fresh.keyring
        citizen = auth.do_sign_in(fresh, "850808301077", demo["850808301077"].password).actor
        assert auth.citizen_identity(fresh, citizen) == {"iin": "850808301077", "phone": "+77012345678"}
        rewrapped = run("keys", "rewrap", *target(settings))
        assert rewrapped.exit_code == 0, rewrapped.output
        with fresh.db.read() as conn:
            blobs = [r[0] for r in conn.execute(sa.text("SELECT iin_enc FROM users WHERE iin_enc IS NOT NULL"))]
            blobs += [r[0] for r in conn.execute(sa.text("SELECT seed_enc FROM ledger_keys"))]
        assert blobs and all(blob_kid(bytes(b)) == new_kid for b in blobs)
        # With the old key gone from the ring, everything still opens.
        from dataclasses import replace

        without_old = replace(fresh, keyring=fresh.keyring.without(old_kid))
        assert auth.citizen_identity(without_old, citizen)["iin"] == "850808301077"
    finally:
        fresh.close()


def test_ledger_key_rotation_keeps_the_history_verifiable(kernel: Any, settings: Any, demo: Any) -> None:
    first = run("ledger", "sign", *target(settings))
    assert first.exit_code == 0 and settings.ledger_origin in first.output
    old_key = kernel.ledger.keys()[0].verifier_key
    rotated = run("ledger", "rotate-key", *target(settings))
    assert rotated.exit_code == 0, rotated.output
    keys = kernel.ledger.keys()
    assert len(keys) == 2 and keys[0].verifier_key == old_key and keys[0].valid_until is not None
    assert keys[1].valid_until is None and keys[1].verifier_key in rotated.output
    kernel.db.run(
        lambda tx: kernel.ledger.append(
            tx, entry_type="decision", actor="platform", action="test", subject=None, obj={}
        )
    )
    run("ledger", "sign", *target(settings))
    verified = run("verify-ledger", *target(settings))
    assert verified.exit_code == 0, verified.output
    only_old = run("verify-ledger", *target(settings), "--key", old_key)
    assert only_old.exit_code != 0
