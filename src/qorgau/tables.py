"""Every table of the platform on one metadata, for migrations and tests (import order registers them)."""

from __future__ import annotations

from qorgau.kernel.auth import tables as _auth_tables  # noqa: F401
from qorgau.kernel.db import metadata
from qorgau.kernel.events import events_table as _events  # noqa: F401
from qorgau.kernel.ledger import tables as _ledger_tables  # noqa: F401
from qorgau.messenger import tables as _messenger_tables  # noqa: F401
from qorgau.reports import tables as _reports_tables  # noqa: F401

__all__ = ["metadata"]
