"""The process-wide kernel (settings, database, writer, keys, ledger, bus) and a request's context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qorgau.kernel.auth.roles import Actor
from qorgau.kernel.crypto import KeyedHasher, KeyRing, load_or_create_keyring
from qorgau.kernel.db import Database, GroupCommitWriter
from qorgau.settings import Settings, ensure_secrets

if TYPE_CHECKING:
    from qorgau.kernel.ledger.log import Ledger


@dataclass
class Kernel:
    """Everything a service needs from the platform, built once per process."""

    settings: Settings
    db: Database
    writer: GroupCommitWriter
    keyring: KeyRing
    hasher: KeyedHasher
    ledger: Ledger
    bus: Any = None
    extras: dict[str, Any] = field(default_factory=dict)

    def actor_ref(self, actor: Actor | None) -> str:
        """How an actor appears in the ledger: a keyed hash of the account, or 'anonymous'."""
        if actor is None:
            return "anonymous"
        return f"{actor.role}:{self.hasher.hash('account', actor.user_id)}"

    def subject_ref(self, purpose: str, value: str) -> str:
        """A keyed hash for a person's identifier (IIN, account id) so it can be matched, never read."""
        return self.hasher.hash(purpose, value)

    def close(self) -> None:
        self.writer.stop()
        self.db.dispose()


def build_kernel(settings: Settings, *, start_writer: bool = True) -> Kernel:
    """Open the database and keys for `settings` (generating secrets on first start)."""
    from qorgau.kernel.ledger.log import Ledger

    settings = ensure_secrets(settings)
    db = Database(settings.resolved_database_url)
    writer = GroupCommitWriter(db)
    if start_writer:
        writer.start()
    keyring = load_or_create_keyring(settings.resolved_keyring_file)
    hasher = KeyedHasher(settings.secret_bytes)
    kernel = Kernel(settings=settings, db=db, writer=writer, keyring=keyring, hasher=hasher, ledger=None)  # type: ignore[arg-type]
    kernel.ledger = Ledger(kernel)
    return kernel


@dataclass
class Ctx:
    """One request's view: the kernel, who is acting, and in which language."""

    kernel: Kernel
    actor: Actor | None
    lang: str = "kk"
    request_id: str = ""
