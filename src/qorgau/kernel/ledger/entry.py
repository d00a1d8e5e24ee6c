"""Ledger entries: RFC 8785 (JCS) canonical JSON objects.

An entry is exactly the object::

    {"action": str, "actor": str, "at": "YYYY-MM-DDTHH:MM:SS.mmmZ",
     "object": {...}, "subject": str | null, "type": str}

``at`` is always UTC with exactly three fractional digits (milliseconds,
truncated, never rounded), so the encoding of an instant is unique.

Values allowed anywhere: ``null``, booleans, integers within ±(2**53 − 1),
strings (valid Unicode), arrays and objects with string keys.  Floats are
rejected (their JSON form is not stable across producers), as is anything else.

The ledger is public to auditors, so entries must never carry clear personal
data: :func:`make_entry` runs :func:`assert_no_clear_pii`, which rejects
anything that looks like a Kazakh IIN/BIN or a Kazakh phone number.  Store
keyed hashes instead.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import rfc8785

__all__ = [
    "MAX_SAFE_INT",
    "REQUIRED_KEYS",
    "EntryError",
    "PiiError",
    "assert_no_clear_pii",
    "format_at",
    "make_entry",
    "parse_entry",
]

MAX_SAFE_INT = 2**53 - 1
REQUIRED_KEYS = frozenset({"type", "at", "actor", "subject", "action", "object"})
_MAX_DEPTH = 32
_AT_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


class EntryError(ValueError):
    """An entry that cannot be (or is not) canonical ledger JSON."""


class PiiError(EntryError):
    """An entry value that looks like clear personal data."""


def format_at(at: datetime) -> str:
    """RFC 3339 UTC timestamp with milliseconds (truncated) and a ``Z`` suffix."""
    if not isinstance(at, datetime):
        raise EntryError("at must be a datetime")
    if at.tzinfo is None or at.utcoffset() is None:
        raise EntryError("at must be timezone-aware")
    try:
        u = at.astimezone(UTC)
    except OverflowError as exc:
        raise EntryError("at is out of range") from exc
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
        f".{u.microsecond // 1000:03d}Z"
    )


def _check_str(s: str, where: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EntryError(f"{where}: string is not valid Unicode") from exc


def _check_value(value: Any, where: str, depth: int = 0) -> Any:
    """Validate and return a plain-JSON copy (dicts and lists only)."""
    if depth > _MAX_DEPTH:
        raise EntryError(f"{where}: nested too deeply")
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not -MAX_SAFE_INT <= value <= MAX_SAFE_INT:
            raise EntryError(f"{where}: integer outside ±(2**53 - 1)")
        return int(value)
    if isinstance(value, float):
        raise EntryError(f"{where}: floats are not allowed in ledger entries")
    if isinstance(value, str):
        _check_str(value, where)
        return str(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise EntryError(f"{where}: object keys must be strings, got {type(k).__name__}")
            _check_str(k, where)
            out[str(k)] = _check_value(v, f"{where}.{_safe_key(k)}", depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_check_value(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    raise EntryError(f"{where}: unsupported type {type(value).__name__}")


def _safe_key(key: str) -> str:
    """A key for error messages: never echo something that looks like PII."""
    return "<redacted>" if _pii_in_string(key) else key


def _check_fields(d: Mapping[str, Any]) -> None:
    for key in ("type", "actor", "action"):
        if not isinstance(d[key], str) or not d[key]:
            raise EntryError(f"{key} must be a non-empty string")
    if d["subject"] is not None and not isinstance(d["subject"], str):
        raise EntryError("subject must be a string or None")
    if not isinstance(d["object"], Mapping):
        raise EntryError("object must be a mapping")


def make_entry(
    type: str,
    actor: str,
    action: str,
    subject: str | None,
    object: Mapping[str, Any],
    at: datetime,
) -> bytes:
    """Canonical (RFC 8785) bytes of a ledger entry; raises EntryError / PiiError."""
    d = {"type": type, "at": format_at(at), "actor": actor, "subject": subject, "action": action}
    d["object"] = object  # type: ignore[assignment]
    _check_fields(d)
    entry = _check_value(d, "entry")
    assert_no_clear_pii(entry)
    try:
        return rfc8785.dumps(entry)
    except rfc8785.CanonicalizationError as exc:  # pragma: no cover - validated above
        raise EntryError(str(exc)) from exc


def _reject_float(text: str) -> Any:
    raise EntryError(f"non-integer number {text!r} in entry")


def _reject_constant(text: str) -> Any:
    raise EntryError(f"{text} is not JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise EntryError(f"duplicate key {k!r}")
        out[k] = v
    return out


def parse_entry(data: bytes) -> dict[str, Any]:
    """Parse entry bytes, requiring exact canonical form and the entry schema.

    Does not run the PII guard (call :func:`assert_no_clear_pii` if wanted).
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EntryError("entry must be bytes")
    data = bytes(data)
    try:
        text = data.decode("utf-8")
        parsed = json.loads(
            text,
            parse_float=_reject_float,
            parse_constant=_reject_constant,
            object_pairs_hook=_no_duplicates,
        )
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise EntryError(f"entry is not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise EntryError("entry must be a JSON object")
    if set(parsed) != REQUIRED_KEYS:
        raise EntryError(f"entry keys must be exactly {sorted(REQUIRED_KEYS)}")
    _check_fields(parsed)
    if not isinstance(parsed["at"], str) or not _AT_RE.fullmatch(parsed["at"]):
        raise EntryError("at must be YYYY-MM-DDTHH:MM:SS.mmmZ")
    try:
        datetime.strptime(parsed["at"], "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError as exc:
        raise EntryError("at is not a valid timestamp") from exc
    _check_value(parsed, "entry")
    try:
        canonical = rfc8785.dumps(parsed)
    except rfc8785.CanonicalizationError as exc:
        raise EntryError(str(exc)) from exc
    if canonical != data:
        raise EntryError("entry is not in RFC 8785 canonical form")
    return parsed


# --------------------------------------------------------------------------
# Clear-PII guard

# UUIDs are removed before scanning: their last group is 12 hex characters and
# is all digits often enough (~0.35 %) to be mistaken for an IIN.
_UUID_RE = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
# An IIN/BIN: exactly 12 consecutive digits.  The run must not touch another
# digit or a hex letter, so hex digests (the keyed hashes the ledger *should*
# hold) never match, while "IIN 900101300123", "iin=900101300123" or
# "ИИН900101300123" do.
_IIN_RE = re.compile(r"(?<![0-9A-Fa-f])[0-9]{12}(?![0-9A-Fa-f])")
# Kazakh phone numbers: +7 / 8 / 7 then 10 digits, optionally grouped with
# spaces, dashes or parentheses: "+77011234567", "8 (701) 123-45-67".
_PHONE_RE = re.compile(
    r"(?<![0-9A-Fa-f+])(?:\+\s?7|7|8)[\s-]?\(?[0-9]{3}\)?[\s-]?[0-9]{3}[\s-]?[0-9]{2}[\s-]?[0-9]{2}(?![0-9A-Fa-f])"
)


def _pii_in_string(s: str) -> str | None:
    s = _UUID_RE.sub(" ", s)
    if _IIN_RE.search(s):
        return "an IIN/BIN-like 12-digit number"
    if _PHONE_RE.search(s):
        return "a phone number"
    return None


def assert_no_clear_pii(entry: Any, _where: str = "entry") -> None:
    """Raise PiiError if any string (value or key) looks like an IIN or a KZ phone number.

    Integers of exactly 12 digits are rejected as well (an IIN stored as a number).
    """
    if isinstance(entry, str):
        reason = _pii_in_string(entry)
        if reason:
            raise PiiError(f"{_where}: looks like {reason}; store a keyed hash instead")
    elif isinstance(entry, bool) or entry is None:
        return
    elif isinstance(entry, int):
        if 10**11 <= abs(entry) < 10**12:
            raise PiiError(f"{_where}: a 12-digit integer looks like an IIN/BIN; store a keyed hash")
    elif isinstance(entry, Mapping):
        for k, v in entry.items():
            if isinstance(k, str):
                assert_no_clear_pii(k, f"{_where} (a key)")
            assert_no_clear_pii(v, f"{_where}.{k}")
    elif isinstance(entry, (list, tuple)):
        for i, v in enumerate(entry):
            assert_no_clear_pii(v, f"{_where}[{i}]")
