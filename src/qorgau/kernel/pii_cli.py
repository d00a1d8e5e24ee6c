"""``qorgau pii``: find and redact personal data in JSON-lines text (see :mod:`qorgau.kernel.pii`).

Mounted by the main command line with ``app.add_typer(pii_app, name="pii")``::

    qorgau pii scan   < reports.jsonl > spans.jsonl      # {"text": ...} -> {"spans": [...]}
    qorgau pii redact < reports.jsonl > redacted.jsonl   # {"text": ...} -> {"text": "... [PHONE] ..."}

Input and output are UTF-8, one JSON object per line, output lines in input order (blank input
lines are skipped). A malformed line stops the run with a message naming the line on stderr and
exit code 2.
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Callable
from typing import TextIO

import typer

from qorgau.kernel.pii import PiiInputError, redact_stream, scan_stream

__all__ = ["pii_app"]

pii_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Personal data in free text.")


def _utf8(stream: TextIO) -> TextIO:
    reconfigure = getattr(stream, "reconfigure", None)
    if reconfigure is not None:
        with contextlib.suppress(ValueError, io.UnsupportedOperation):
            reconfigure(encoding="utf-8")
    return stream


def _run(fn: Callable[[TextIO, TextIO], int]) -> None:
    try:
        fn(_utf8(sys.stdin), _utf8(sys.stdout))
    except PiiInputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    except UnicodeDecodeError:
        typer.echo("error: input is not valid UTF-8", err=True)
        raise typer.Exit(2) from None


@pii_app.command("scan")
def scan() -> None:
    """Read JSON lines {"text": ...} on stdin; write {"spans": [{"start", "end", "label"}]} per line."""
    _run(scan_stream)


@pii_app.command("redact")
def redact() -> None:
    """Read JSON lines {"text": ...} on stdin; write {"text": ...} with each item replaced by [LABEL]."""
    _run(redact_stream)
