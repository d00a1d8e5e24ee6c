"""make_entry's fast path (C json encoder, one checking walk) against the original exact pipeline.

The reference below is the pipeline make_entry had before the fast path, copied verbatim: validate
and copy (_check_value), run the PII guard on the copy (assert_no_clear_pii), then rfc8785.dumps.
make_entry must return the same bytes, or raise the same exception type with the same message, for
every input.
"""

from __future__ import annotations

import re
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qorgau.kernel.ledger import entry as entry_mod
from qorgau.kernel.ledger.entry import MAX_SAFE_INT, EntryError, PiiError, format_at, make_entry

AT = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)

# ------------------------------------------------------------------ the reference (verbatim)

_MAX_DEPTH = 32
_UUID_RE = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
_IIN_RE = re.compile(r"(?<![0-9A-Fa-f])[0-9]{12}(?![0-9A-Fa-f])")
_PHONE_RE = re.compile(
    r"(?<![0-9A-Fa-f+])(?:\+\s?7|7|8)[\s-]?\(?[0-9]{3}\)?[\s-]?[0-9]{3}[\s-]?[0-9]{2}[\s-]?[0-9]{2}(?![0-9A-Fa-f])"
)


def ref_pii_in_string(s: str) -> str | None:
    s = _UUID_RE.sub(" ", s)
    if _IIN_RE.search(s):
        return "an IIN/BIN-like 12-digit number"
    if _PHONE_RE.search(s):
        return "a phone number"
    return None


def _ref_safe_key(key: str) -> str:
    return "<redacted>" if ref_pii_in_string(key) else key


def _ref_check_str(s: str, where: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EntryError(f"{where}: string is not valid Unicode") from exc


def _ref_check_value(value: Any, where: str, depth: int = 0) -> Any:
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
        _ref_check_str(value, where)
        return str(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise EntryError(f"{where}: object keys must be strings, got {type(k).__name__}")
            _ref_check_str(k, where)
            out[str(k)] = _ref_check_value(v, f"{where}.{_ref_safe_key(k)}", depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_ref_check_value(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    raise EntryError(f"{where}: unsupported type {type(value).__name__}")


def _ref_check_fields(d: Mapping[str, Any]) -> None:
    for key in ("type", "actor", "action"):
        if not isinstance(d[key], str) or not d[key]:
            raise EntryError(f"{key} must be a non-empty string")
    if d["subject"] is not None and not isinstance(d["subject"], str):
        raise EntryError("subject must be a string or None")
    if not isinstance(d["object"], Mapping):
        raise EntryError("object must be a mapping")


def ref_assert_no_clear_pii(entry: Any, _where: str = "entry") -> None:
    if isinstance(entry, str):
        reason = ref_pii_in_string(entry)
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
                ref_assert_no_clear_pii(k, f"{_where} (a key)")
            ref_assert_no_clear_pii(v, f"{_where}.{k}")
    elif isinstance(entry, (list, tuple)):
        for i, v in enumerate(entry):
            ref_assert_no_clear_pii(v, f"{_where}[{i}]")


def ref_make_entry(
    type: str, actor: str, action: str, subject: str | None, object: Mapping[str, Any], at: datetime
) -> bytes:
    d = {"type": type, "at": format_at(at), "actor": actor, "subject": subject, "action": action}
    d["object"] = object  # type: ignore[assignment]
    _ref_check_fields(d)
    entry = _ref_check_value(d, "entry")
    ref_assert_no_clear_pii(entry)
    try:
        return rfc8785.dumps(entry)
    except rfc8785.CanonicalizationError as exc:  # pragma: no cover
        raise EntryError(str(exc)) from exc


def outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    try:
        return ("ok", fn(*args))
    except Exception as exc:
        return (type(exc).__name__, str(exc))


def same_as_reference(obj: Any, subject: Any = None, actor: Any = "user:5f2b", at: datetime = AT) -> tuple[str, Any]:
    args = ("case.opened", actor, "open", subject, obj, at)
    got = outcome(make_entry, *args)
    assert got == outcome(ref_make_entry, *args)
    return got


# ------------------------------------------------------------------ the proofs' building blocks


def test_every_code_point_escapes_as_rfc8785() -> None:
    """Strings: the C encoder and rfc8785 agree on every Unicode scalar value, one at a time."""
    encode = entry_mod._PLAIN_JSON.encode
    bad = [
        c
        for c in range(0x110000)
        if not 0xD800 <= c <= 0xDFFF and encode(chr(c)).encode("utf-8") != rfc8785.dumps(chr(c))
    ]
    assert bad == []


def test_lone_surrogates_fail_on_both_paths() -> None:
    for s in ("\ud800", "a\udfffb", "\udbff\udc00"[::-1]):
        with pytest.raises(UnicodeEncodeError):
            entry_mod._PLAIN_JSON.encode(s).encode("utf-8")
        assert same_as_reference({"v": s})[0] == "EntryError"
        assert same_as_reference({s: 1})[0] == "EntryError"


bmp_text = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs",)), max_size=6)


@settings(max_examples=300, deadline=None)
@given(st.lists(bmp_text | st.sampled_from(["\ue000", "\uffff", "\ud7ff", "a", "", "\x00", "é"]), max_size=12))
def test_bmp_key_order_is_utf16_order(keys: list[str]) -> None:
    assert sorted(keys) == sorted(keys, key=lambda k: k.encode("utf-16be"))


def test_key_outside_bmp_takes_the_exact_path() -> None:
    # U+1F600 is D83D DE00 in UTF-16, so RFC 8785 puts it before U+E000; code-point order would not.
    obj = {"\ue000": 1, "\U0001f600": 2}
    status, data = same_as_reference(obj)
    assert status == "ok"
    assert data.index("\U0001f600".encode()) < data.index("\ue000".encode())
    assert not entry_mod._is_plain(obj, 1)


def test_pii_candidate_filter_is_exact_on_examples() -> None:
    samples = [
        "900101300123",
        "IIN 900101300123",
        "+7 (701) 123-45-67",
        "8 701 123 45 67",
        "87011234567",
        "+7\u2003701\u00a0123 45 67",
        "x8(701)1234567",
        "550e8400-e29b-41d4-a716-446655440000900101300123",
        "550e8400-e29b-41d4-a716-446655440000" + "8 701 123 45 67",
        "1714567890123",
        "2024-05-01T12:00:00.123Z",
        "f" * 64,
        "0" * 11,
        "7" + "0" * 10,
    ]
    for s in samples:
        assert entry_mod._pii_in_string(s) == ref_pii_in_string(s), s


pii_alphabet = st.sampled_from(list("0123456789012345678978+ -()\u00a0\u2003\nabcdefABCDEFxyzИ"))
piiish = st.text(pii_alphabet, max_size=40) | st.builds(
    lambda a, u, b: a + str(u) + b, st.text(pii_alphabet, max_size=14), st.uuids(), st.text(pii_alphabet, max_size=14)
)


@settings(max_examples=2000, deadline=None)
@given(piiish)
def test_pii_guard_unchanged(s: str) -> None:
    assert entry_mod._pii_in_string(s) == ref_pii_in_string(s)


# ------------------------------------------------------------------ make_entry == reference


class Colour(str, Enum):  # noqa: UP042 - on purpose: str() gives "Colour.RED", not the value
    RED = "red"


class Num(int):
    pass


class Text(str):
    pass


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**11) + 1, 10**11 - 1)
    | st.integers(-(2**60), 2**60)
    | st.sampled_from(
        [
            0,
            10**11 - 1,
            10**11,
            -(10**11),
            10**12 - 1,
            10**12,
            -(10**12),
            MAX_SAFE_INT,
            MAX_SAFE_INT + 1,
            -MAX_SAFE_INT,
            -MAX_SAFE_INT - 1,
        ]
    )
    | st.text(max_size=12)
    | st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=8)
    | st.text(st.characters(max_codepoint=0x7F), max_size=30)
    | piiish
    | st.uuids().map(str)
    | st.uuids().map(lambda u: u.hex)
    | st.sampled_from([1.5, 1.0, float("nan"), b"x", AT, Colour.RED, Num(3), Text("t"), "\ud800", "\x7f\u2028"])
)
keys = (
    st.text(max_size=6)
    | st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=4)
    | st.sampled_from(["\ue000", "\U0001f600", "a", "A", "", "900101300123", "\x00", "\t"])
    | piiish
)


def containers(inner: Any) -> Any:
    return (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(keys, inner, max_size=4)
        | st.dictionaries(keys, inner, max_size=3).map(OrderedDict)
        | st.dictionaries(st.integers(0, 3), inner, max_size=2)
        | st.dictionaries(st.sampled_from([Text("k"), "k", Text("z")]), inner, max_size=2)
    )


values = st.recursive(scalars, containers, max_leaves=24)
objects = st.dictionaries(keys, values, max_size=6)


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(obj=objects, subject=st.none() | scalars, actor=st.sampled_from(["user:5f2b", "+77011234567", "", 5]))
def test_make_entry_equals_reference(obj: dict[Any, Any], subject: Any, actor: Any) -> None:
    same_as_reference(obj, subject=subject, actor=actor)


safe_text = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs", "Nd")), max_size=10)
safe_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**11) + 1, 10**11 - 1) | safe_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(safe_text, inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=500, deadline=None)
@given(obj=st.dictionaries(safe_text, safe_values, max_size=6), at=st.datetimes(timezones=st.just(UTC)))
def test_plain_entries_take_the_fast_path(obj: dict[str, Any], at: datetime) -> None:
    """Entries of plain values never reach rfc8785 (the speed-up holds) and still match it."""
    assert entry_mod._is_plain(obj, 1)
    assert make_entry("case.opened", "user:5f2b", "open", None, obj, at) == ref_make_entry(
        "case.opened", "user:5f2b", "open", None, obj, at
    )


def test_typical_entry_does_not_call_rfc8785(monkeypatch: pytest.MonkeyPatch) -> None:
    obj = {"case": uuid.uuid4().hex, "status": "open", "step": 7, "by": None, "tags": ["a", "b"]}
    expected = ref_make_entry("decision", "official:" + "ab" * 32, "case.update", "cd" * 32, obj, AT)

    def boom(_value: Any) -> bytes:
        raise AssertionError("took the exact path")

    monkeypatch.setattr(entry_mod.rfc8785, "dumps", boom)
    assert make_entry("decision", "official:" + "ab" * 32, "case.update", "cd" * 32, obj, AT) == expected


INT_EDGES = [
    0,
    -1,
    10**11 - 1,
    10**11,
    -(10**11) + 1,
    -(10**11),
    10**12 - 1,
    -(10**12) + 1,
    10**12,
    -(10**12),
    MAX_SAFE_INT,
    MAX_SAFE_INT + 1,
    -MAX_SAFE_INT,
    -MAX_SAFE_INT - 1,
    2**64,
    True,
    False,
    Num(10**11),
    Num(5),
]


@pytest.mark.parametrize("n", INT_EDGES)
def test_integer_edges_unchanged(n: int) -> None:
    same_as_reference({"n": n})
    same_as_reference({"l": [1, (n,)]}, subject="s")


@pytest.mark.parametrize("depth", [29, 30, 31, 32, 33, 40])
def test_nesting_limit_unchanged(depth: int) -> None:
    for leaf in ({}, [], 1, "x"):
        obj: Any = leaf
        for _ in range(depth):
            obj = {"k": obj}
        same_as_reference(obj)
        same_as_reference({"l": [obj]})


def test_cycles_are_rejected_as_before() -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    assert same_as_reference(loop)[0] == "EntryError"
    lst: list[Any] = []
    lst.append(lst)
    assert same_as_reference({"l": lst})[0] == "EntryError"
