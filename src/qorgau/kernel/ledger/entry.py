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
    if _is_plain(d, 0):
        try:
            return _PLAIN_JSON.encode(d).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate somewhere: the exact path below rejects it with its location
    entry = _check_value(d, "entry")
    assert_no_clear_pii(entry)
    try:
        return rfc8785.dumps(entry)
    except rfc8785.CanonicalizationError as exc:  # pragma: no cover - validated above
        raise EntryError(str(exc)) from exc


# --------------------------------------------------------------------------
# The fast path of make_entry
#
# Most entries are small dicts of str/int/None.  For those, one walk checks everything the exact
# path (_check_value + assert_no_clear_pii + rfc8785.dumps) would, without building a copy or any
# error message, and the stdlib's C JSON encoder writes the bytes.  Anything unusual (a type that is
# not exactly dict/list/tuple/str/int/bool/None, an invalid or suspicious value, a key outside the
# BMP, deep nesting, a lone surrogate) sends the entry down the exact path, which then produces the
# result or the error exactly as before.  Why the bytes are identical on the fast path:
#
# * null/true/false and integers (|n| <= 2**53 - 1): both print the same literals and decimals.
# * Strings: rfc8785 and json (ensure_ascii=False) escape exactly '"', '\\' and U+0000..U+001F,
#   with the same short forms (\b \t \n \f \r) and lowercase \u00xx for the other controls, and
#   copy every other code point; the whole text is then UTF-8 encoded (strict, like rfc8785).
#   tests/unit/kernel/test_ledger_entry_fastpath.py checks every code point.
# * Object keys: RFC 8785 orders them by UTF-16 code units, json by code points.  For keys made of
#   BMP characters only, each code point is one code unit of the same value, so the two orders
#   agree; keys with a character above U+FFFF (whose surrogates sort below U+E000..U+FFFF) take
#   the exact path.
# * Arrays (lists and tuples) and the separators (",", ":") without spaces are the same.

_PLAIN_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True, check_circular=False)
_INT_PII_LOW = 10**11  # 12-digit integers (10**11 <= |n| < 10**12) look like an IIN
_INT_PII_HIGH = 10**12


def _is_plain(value: Any, depth: int) -> bool:
    """True if ``value`` (a container at ``depth``) is valid, PII-free entry JSON fit for the fast path.

    False means "not sure": the caller takes the exact path.  Conservative on depth: a container at
    ``_MAX_DEPTH`` is refused here although the exact path accepts it when empty.
    """
    if depth >= _MAX_DEPTH:
        return False
    t = type(value)
    if t is dict:
        for k in value:
            if type(k) is not str:
                return False
            if not k.isascii() and max(k) > "\uffff":
                return False
            if len(k) >= _PII_MIN_LEN and _pii_in_string(k) is not None:
                return False
        values = value.values()
    elif t is list or t is tuple:
        values = value
    else:
        return False
    for v in values:
        t = type(v)
        if t is str:
            if len(v) >= _PII_MIN_LEN and _pii_in_string(v) is not None:
                return False
        elif t is int:
            if not -_INT_PII_LOW < v < _INT_PII_LOW and not _INT_PII_HIGH <= abs(v) <= MAX_SAFE_INT:
                return False
        elif v is None or t is bool:
            continue
        elif t is dict or t is list or t is tuple:
            if not _is_plain(v, depth + 1):
                return False
        else:
            return False
    return True


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


# Every match of either pattern is at least 11 characters long and, from its first digit to its
# last, is a run of at least 11 characters made of digits, whitespace, "-", "(" and ")" that starts
# and ends with a digit (a phone number's "+" comes before its first digit).  Strings without such
# a run (hex digests, words, timestamps) are clean, which this one cheap search shows; UUIDs are
# replaced first, exactly as below (a space can join two runs, so the order matters).
_PII_MIN_LEN = 11
_PII_CANDIDATE_RE = re.compile(r"[0-9][0-9\s\-()]{9,}[0-9]")


def _pii_in_string(s: str) -> str | None:
    if len(s) < _PII_MIN_LEN:
        return None  # removing UUIDs never makes a string longer
    if "-" in s:  # every UUID has one
        s = _UUID_RE.sub(" ", s)
    if _PII_CANDIDATE_RE.search(s) is None:
        return None
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
