"""The `qorgau` command: serve, migrate, demo data, accounts, keys and ledger verification."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from qorgau.kernel.pii_cli import pii_app
from qorgau.settings import Settings, SettingsError, load_settings

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Qorgau platform command line.")
users_app = typer.Typer(no_args_is_help=True, help="Accounts.")
keys_app = typer.Typer(no_args_is_help=True, help="Key-encryption keys.")
ledger_app = typer.Typer(no_args_is_help=True, help="The transparency log.")
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")
app.add_typer(ledger_app, name="ledger")
reports_app = typer.Typer(no_args_is_help=True, help="Citizen reports.")
app.add_typer(reports_app, name="reports")
messenger_app = typer.Typer(no_args_is_help=True, help="The officials' messenger.")
app.add_typer(messenger_app, name="messenger")
app.add_typer(pii_app, name="pii")

console = Console(stderr=False)
err = Console(stderr=True)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (QORGAU_DATA_DIR).", show_default=False)
]
DatabaseUrl = Annotated[
    str | None, typer.Option("--database-url", help="Database URL (QORGAU_DATABASE_URL).", show_default=False)
]
ConfigFile = Annotated[Path | None, typer.Option("--config", help="TOML settings file (QORGAU_CONFIG).")]


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _settings(data_dir: Path | None, database_url: str | None, config: Path | None, **extra: Any) -> Settings:
    try:
        return load_settings(config, data_dir=data_dir, database_url=database_url, **extra)
    except SettingsError as exc:
        raise fail(str(exc), 2) from None


def _kernel(settings: Settings, *, migrate: bool = False) -> Any:
    from qorgau.kernel.context import build_kernel
    from qorgau.migrations import upgrade

    if migrate:
        upgrade(settings)
    else:
        _require_migrated(settings)
    return build_kernel(settings, start_writer=False)


def _require_migrated(settings: Settings) -> None:
    from qorgau.migrations import is_current

    url = settings.resolved_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise fail(f"there is no database at {url.removeprefix('sqlite:///')}: run `qorgau migrate` first")
    try:
        current = is_current(settings)
    except Exception as exc:
        raise fail(f"cannot open the database: {type(exc).__name__}: {exc}") from None
    if not current:
        raise fail("the database is not migrated: run `qorgau migrate` first")


def _problem_exit(exc: Exception) -> typer.Exit:
    from qorgau.kernel.errors import Problem

    if isinstance(exc, Problem):
        where = f" ({exc.field})" if exc.field else ""
        detail = f": {exc.detail}" if exc.detail else ""
        return fail(f"{exc.title('en')}{where}{detail} [{exc.code}]")
    raise exc


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (>1 needs --bus redis://).")] = None,
    bus: Annotated[str | None, typer.Option(help="Event bus: memory or redis://host:port/db.")] = None,
    no_migrate: Annotated[bool, typer.Option("--no-migrate", help="Do not migrate on start.")] = False,
    demo: Annotated[bool, typer.Option("--demo", help="Load demo data once before serving.")] = False,
    matrix_open_registration: Annotated[
        bool,
        typer.Option("--matrix-open-registration", help="Let anyone register a messenger account (development)."),
    ] = False,
) -> None:
    """Run the platform (migrates on start) and print its URL."""
    import uvicorn

    from qorgau.messenger.runtime import tune_process

    # Before the demo's sign-in hashes: their work areas must go back to the system when freed.
    tune_process()

    from qorgau.migrations import upgrade
    from qorgau.settings import ensure_secrets

    settings = ensure_secrets(
        _settings(
            data_dir,
            database_url,
            config,
            host=host,
            port=port,
            workers=workers,
            bus=bus,
            matrix_open_registration=True if matrix_open_registration else None,
        )
    )
    if settings.workers > 1 and settings.bus == "memory":
        raise fail(
            "--workers > 1 needs a shared bus: pass --bus redis://host:6379/0 (the in-memory bus is per process)"
        )
    if not no_migrate:
        upgrade(settings)
    else:
        _require_migrated(settings)
    if demo:
        _load_demo(settings)
    url = f"http://{settings.host}:{settings.port}"
    console.print(
        f"[bold green]Qorgau[/] is serving at [bold]{url}[/]  (database: {_db_label(settings)})", soft_wrap=True
    )
    import os

    # Workers are separate processes: hand them the resolved settings through the environment.
    os.environ.update(_settings_env(settings))
    if settings.workers > 1:
        _serve_workers(settings)
    else:
        from qorgau.app import create_app

        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
        )


def _settings_env(settings: Settings) -> dict[str, str]:
    """Every resolved setting as QORGAU_* variables, so worker processes see exactly what was validated."""
    from dataclasses import fields

    env = {"QORGAU_DATABASE_URL": settings.resolved_database_url}
    for f in fields(settings):
        value = getattr(settings, f.name)
        if f.name in ("extra", "database_url") or value is None:
            continue
        env[f"QORGAU_{f.name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
    return env


def _serve_workers(settings: Settings) -> None:
    """Several worker processes on one listening socket.

    The socket is bound here with proto=IPPROTO_TCP: uvicorn's own multi-worker socket is created with
    proto 0, so asyncio never sets TCP_NODELAY on accepted connections and every keep-alive response
    after the first waits ~40 ms for delayed ACKs (uvicorn issue #3149).
    """
    import socket

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "qorgau.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="warning",
        access_log=False,
    )
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        raise fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    Multiprocess(config, sockets=[sock]).run()


def _db_label(settings: Settings) -> str:
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        return url
    return url.split("@")[-1] if "@" in url else url


@app.command()
def migrate(data_dir: DataDir = None, database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:
    """Bring the database schema up to date."""
    from qorgau.migrations import upgrade
    from qorgau.settings import ensure_secrets

    settings = ensure_secrets(_settings(data_dir, database_url, config))
    upgrade(settings)
    console.print(f"database migrated: {_db_label(settings)}")


def _load_demo(settings: Settings) -> None:
    from qorgau.demo import load_demo

    kernel = _kernel(settings)
    try:
        created = load_demo(kernel)
    finally:
        kernel.ledger.sign_if_grown(force=False)
        kernel.close()
    table = Table(title="Demo accounts (change these passwords outside a demo)")
    table.add_column("username")
    table.add_column("password")
    table.add_column("role")
    table.add_column("agency")
    for account in created:
        table.add_row(account.username, account.password, account.role, account.agency or "—")
    console.print(table)


@app.command()
def demo(data_dir: DataDir = None, database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:
    """Load demo agencies and one account per role (idempotent) and print their logins."""
    settings = _settings(data_dir, database_url, config)
    from qorgau.settings import ensure_secrets

    settings = ensure_secrets(settings)
    from qorgau.migrations import upgrade

    upgrade(settings)
    _load_demo(settings)


@users_app.command("create")
def users_create(
    username: Annotated[str, typer.Option(help="Login name.")],
    role: Annotated[str, typer.Option(help="Role, e.g. official, agency_admin.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from stdin.")] = False,
    agency: Annotated[str | None, typer.Option(help="Agency code or id.")] = None,
    display_name: Annotated[str | None, typer.Option("--display-name", help="Name shown to others.")] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="Public address for invitation links (default: host and port).")
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Create an account (the operator acts with platform rights).

    With --password-stdin the account gets that password and counts as joined; without it, an agency
    account is created without a password and a one-time invitation link is printed instead.
    """
    from qorgau.kernel.auth import services as auth
    from qorgau.kernel.errors import Problem

    if not password_stdin:
        from qorgau.kernel.auth.invites import do_invite_user
        from qorgau.kernel.auth.roles import AGENCY_ROLES

        if role not in AGENCY_ROLES:
            raise fail(
                "pass the password on standard input with --password-stdin (never on the command line);"
                " only agency accounts can be invited by link"
            )
        settings = _settings(data_dir, database_url, config)
        kernel = _kernel(settings)
        try:
            issued = do_invite_user(
                None, kernel, username=username, role=role, agency=agency, display_name=display_name
            )
            kernel.ledger.sign_if_grown()
        except Problem as exc:
            raise _problem_exit(exc) from None
        finally:
            kernel.close()
        console.print(f"invited {username.strip().lower()} ({role}); send this one-time link (it is not stored):")
        console.print(issued.url(base_url or f"http://{settings.host}:{settings.port}"), soft_wrap=True)
        return
    password = sys.stdin.readline().rstrip("\r\n")
    kernel = _kernel(_settings(data_dir, database_url, config))
    try:
        auth.do_create_user(
            None,
            kernel,
            username=username,
            password=password,
            role=role,
            agency=agency,
            display_name=display_name,
        )
        kernel.ledger.sign_if_grown()
    except Problem as exc:
        raise _problem_exit(exc) from None
    finally:
        kernel.close()
    console.print(f"created {username.strip().lower()} ({role})")


@users_app.command("list")
def users_list(data_dir: DataDir = None, database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:
    """List accounts."""
    from qorgau.kernel.auth import services as auth

    kernel = _kernel(_settings(data_dir, database_url, config))
    try:
        agencies = {a.id: a.code for a in auth.list_agencies(kernel)}
        table = Table()
        for col in ("username", "name", "role", "agency", "disabled"):
            table.add_column(col)
        for u in auth.list_all_users(kernel):
            table.add_row(
                u.username,
                u.display_name,
                u.role.value,
                agencies.get(u.agency_id or "", "—"),
                str(u.disabled),
            )
        console.print(table)
    finally:
        kernel.close()


@users_app.command("set-role")
def users_set_role(
    username: Annotated[str, typer.Option(help="Login name.")],
    role: Annotated[str, typer.Option(help="The new role.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Change an account's role; its sessions and tokens end."""
    from qorgau.kernel.auth import services as auth
    from qorgau.kernel.errors import Problem

    kernel = _kernel(_settings(data_dir, database_url, config))
    try:
        auth.do_set_role(None, kernel, username=username, role=role)
        kernel.ledger.sign_if_grown()
    except Problem as exc:
        raise _problem_exit(exc) from None
    finally:
        kernel.close()
    console.print(f"{username} is now {role}")


@keys_app.command("rotate")
def keys_rotate(data_dir: DataDir = None, database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:
    """Add a new key-encryption key; new data uses it, old data stays readable."""
    from qorgau.kernel.crypto import load_or_create_keyring, save_keyring
    from qorgau.settings import ensure_secrets

    settings = ensure_secrets(_settings(data_dir, database_url, config))
    path = settings.resolved_keyring_file
    ring = load_or_create_keyring(path).rotate()
    save_keyring(path, ring)
    console.print(f"new current key {ring.current.kid}; {len(ring)} keys in {path}")
    console.print("restart running instances to use it, then run `qorgau keys rewrap`")


@keys_app.command("rewrap")
def keys_rewrap(data_dir: DataDir = None, database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:
    """Re-wrap every stored data key under the newest key-encryption key."""
    from qorgau.kernel.keys import count_sealed, rewrap_all

    kernel = _kernel(_settings(data_dir, database_url, config))
    try:
        total = count_sealed(kernel)
        with _progress() as progress:
            task = progress.add_task("re-wrapping", total=total)
            changed = rewrap_all(kernel, on_progress=lambda n: progress.update(task, advance=n))
    finally:
        kernel.close()
    console.print(f"{changed} of {total} values re-wrapped under key {kernel.keyring.current.kid}")


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


def _purge(settings: Settings, purge: Any, changed: Any) -> Any:
    """Run a retention rule once; a new signed head when it wrote ledger entries."""
    kernel = _kernel(settings)
    try:
        result = purge(kernel)
        if changed(result):
            kernel.ledger.sign_if_grown()
    finally:
        kernel.close()
    return result


@reports_app.command("purge")
def reports_purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count the reports that are due.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Delete the content of finished reports older than QORGAU_REPORTS_RETENTION_DAYS (metadata stays)."""
    from qorgau.reports.services.retention import purge_due

    settings = _settings(data_dir, database_url, config)
    result = _purge(settings, lambda kernel: purge_due(kernel, dry_run=dry_run), lambda r: r.count and not dry_run)
    days = settings.reports_retention_days
    if dry_run:
        console.print(f"{result.count} reports are due for purging (finished over {days} days ago); nothing changed")
    else:
        console.print(f"{result.count} reports purged (finished more than {days} days ago)")


@messenger_app.command("purge")
def messenger_purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count the messages that are due.")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
) -> None:
    """Remove the content of messages older than their room kind's retention period (rooms on hold kept)."""
    from qorgau.messenger.services.compliance import purge_expired

    settings = _settings(data_dir, database_url, config)
    result = _purge(settings, lambda kernel: purge_expired(kernel, dry_run=dry_run), lambda r: r.events and not dry_run)
    if dry_run:
        console.print(f"{result.events} messages in {result.rooms} rooms are due for purging; nothing changed")
    else:
        console.print(f"{result.events} messages purged in {result.rooms} rooms")


@app.command("verify-ledger")
def verify_ledger(
    url: Annotated[str | None, typer.Option(help="Base URL of a running deployment.")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
    key: Annotated[
        list[str] | None, typer.Option("--key", help="Trust only this note verifier key (repeatable).")
    ] = None,
) -> None:
    """Check the whole ledger offline: signatures, consistency, roots and every entry's inclusion."""
    from qorgau.kernel.ledger.verify import (
        LedgerMismatch,
        source_from_database,
        source_from_url,
        verify_source,
    )

    if url and (data_dir or database_url):
        raise fail("give either --url or --data-dir/--database-url, not both")
    kernel = None
    if url:
        source = source_from_url(url)
    else:
        kernel = _kernel(_settings(data_dir, database_url, config))
        source = source_from_database(kernel)
    try:
        with _progress() as progress:
            task = progress.add_task("verifying", total=None)

            def on_progress(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            report = verify_source(source, trusted_keys=key or None, on_progress=on_progress)
    except LedgerMismatch as exc:
        raise fail(f"ledger verification FAILED: {exc}") from None
    finally:
        if kernel is not None:
            kernel.close()
    console.print(
        f"[bold green]ledger OK[/]: {report.tree_heads} signed tree heads, {report.entries} entries, "
        f"root {report.root_b64} at size {report.tree_size}"
    )


@ledger_app.command("sign")
def ledger_sign(data_dir: DataDir = None, database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:
    """Sign a tree head now if the log has grown since the last one."""
    kernel = _kernel(_settings(data_dir, database_url, config))
    try:
        head = kernel.ledger.sign_if_grown(force=True) or kernel.ledger.latest_head()
    finally:
        kernel.close()
    if head is not None:
        console.print(head.checkpoint, end="", soft_wrap=True)


@ledger_app.command("rotate-key")
def ledger_rotate_key(data_dir: DataDir = None, database_url: DatabaseUrl = None, config: ConfigFile = None) -> None:
    """Sign new tree heads with a new Ed25519 key; the old key stays published."""
    kernel = _kernel(_settings(data_dir, database_url, config))
    try:
        key = kernel.ledger.rotate_key()
        kernel.ledger.sign_if_grown(force=True)
    finally:
        kernel.close()
    console.print(f"new verifier key: {key.verifier_key}", soft_wrap=True)


def main() -> None:
    try:
        app()
    except SettingsError as exc:
        err.print(f"[bold red]error:[/] {exc}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
