"""Ledger entries: RFC 8785 canonical JSON, strict parsing, clear-PII guard."""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qorgau.kernel.ledger.entry import (
    MAX_SAFE_INT,
    EntryError,
    PiiError,
    assert_no_clear_pii,
    format_at,
    make_entry,
    parse_entry,
)

AT = datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)


def entry(obj: Any = None, **kw: Any) -> bytes:
    args: dict[str, Any] = {
        "type": "case.opened",
        "actor": "user:5f2b",
        "action": "open",
        "subject": None,
        "object": {} if obj is None else obj,
        "at": AT,
    }
    args.update(kw)
    return make_entry(**args)


def test_canonical_bytes() -> None:
    b = make_entry(
        "case.opened",
        "user:5f2b",
        "open",
        None,
        {"z": [True, None, "é"], "a": {"y": -1, "b": 0}, "n": MAX_SAFE_INT},
        AT,
    )
    assert (
        b
        == (
            '{"action":"open","actor":"user:5f2b","at":"2024-05-01T12:00:00.123Z",'
            '"object":{"a":{"b":0,"y":-1},"n":9007199254740991,"z":[true,null,"é"]},'
            '"subject":null,"type":"case.opened"}'
        ).encode()
    )
    assert parse_entry(b)["object"]["n"] == MAX_SAFE_INT


def test_at_is_utc_milliseconds() -> None:
    almaty = timezone(timedelta(hours=5))
    assert format_at(datetime(2024, 5, 1, 17, 0, 0, tzinfo=almaty)) == "2024-05-01T12:00:00.000Z"
    assert format_at(datetime(2024, 5, 1, 12, 0, 0, 999999, tzinfo=UTC)) == "2024-05-01T12:00:00.999Z"
    assert b'"at":"2024-05-01T12:00:00.000Z"' in entry(at=datetime(2024, 5, 1, 17, tzinfo=almaty))
    with pytest.raises(EntryError):
        entry(at=datetime(2024, 5, 1, 12))  # naive
    with pytest.raises(EntryError):
        entry(at="2024-05-01T12:00:00Z")


@pytest.mark.parametrize(
    "obj",
    [
        {"x": 1.5},
        {"x": 1.0},
        {"x": [1, 2, 3.0]},
        {"x": {"y": {"z": float("nan")}}},
        {"x": float("inf")},
        {"x": 2**53},
        {"x": -(2**53)},
        {"x": [2**64]},
        {1: "int key"},
        {("t",): "tuple key"},
        {"x": b"bytes"},
        {"x": {1, 2}},
        {"x": AT},
        {"x": "\ud800"},  # lone surrogate
    ],
)
def test_invalid_values_rejected(obj: dict[Any, Any]) -> None:
    with pytest.raises(EntryError):
        entry(obj)


def test_field_types() -> None:
    assert b'"subject":"doc:ab12"' in entry(subject="doc:ab12")
    for bad in [{"type": ""}, {"actor": 3}, {"action": None}, {"subject": 5}, {"object": [1]}]:
        with pytest.raises(EntryError):
            entry(**bad)
    assert entry({"ok": -MAX_SAFE_INT, "t": (1, 2)})  # tuples become arrays


@pytest.mark.parametrize(
    "value",
    [
        "900101300123",
        "IIN 900101300123",
        "iin=900101300123;",
        "ИИН900101300123",
        "+77011234567",
        "+7 701 123 45 67",
        "+7 (701) 123-45-67",
        "8 701 123 45 67",
        "87011234567",
        "call 8(701)1234567 now",
        "77011234567",
    ],
)
def test_pii_rejected_anywhere(value: str) -> None:
    for obj in [{"v": value}, {"a": [{"b": value}]}, {value: 1}]:
        with pytest.raises(PiiError):
            entry(obj)
        with pytest.raises(PiiError):
            assert_no_clear_pii(obj)
    with pytest.raises(PiiError):
        entry(subject=value)
    with pytest.raises(PiiError):
        entry(actor=value)


def test_pii_error_does_not_echo_the_value() -> None:
    with pytest.raises(EntryError) as info:
        entry({"900101300123": 1.5})
    assert "900101300123" not in str(info.value)
    with pytest.raises(PiiError) as info2:
        entry({"900101300123": 1})
    assert "900101300123" not in str(info2.value)


def test_twelve_digit_integer_rejected() -> None:
    with pytest.raises(PiiError):
        entry({"n": 900101300123})
    assert entry({"n": 12345678901, "m": 1234567890123})


def test_no_false_positives_on_identifiers() -> None:
    fine = [
        "2024-05-01T12:00:00.123Z",
        "1714567890123",  # 13-digit epoch milliseconds
        "12345678901",  # 11 digits, not a phone prefix
        "550e8400-e29b-41d4-a716-446655440000",
        "123e4567-e89b-12d3-a456-426614174000",
        "00000000-0000-0000-0000-123456789012",  # UUID whose last group is all digits
        "hmac-sha256:" + "1" * 12 + "a" * 52,
        "case/2024/000123",
    ]
    assert entry({"v": fine})


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=16, max_size=64))
def test_digests_never_look_like_pii(raw: bytes) -> None:
    d = hashlib.sha256(raw).digest()
    values = [
        d.hex(),
        d.hex().upper(),
        base64.b64encode(d).decode(),
        base64.urlsafe_b64encode(d).decode().rstrip("="),
        str(uuid.UUID(bytes=d[:16])),
        "k1:" + d.hex(),
    ]
    assert_no_clear_pii({"v": values})


def test_parse_entry_round_trip_and_strictness() -> None:
    b = entry({"b": [1, "x"], "a": None}, subject="s")
    d = parse_entry(b)
    assert d == {
        "type": "case.opened",
        "at": "2024-05-01T12:00:00.123Z",
        "actor": "user:5f2b",
        "subject": "s",
        "action": "open",
        "object": {"a": None, "b": [1, "x"]},
    }
    text = b.decode()
    bad = [
        text.replace(",", ", "),  # whitespace
        text.replace('{"action":"open","actor":"user:5f2b",', '{"actor":"user:5f2b","action":"open",'),  # key order
        text + "\n",
        text.replace('"b":[1,"x"]', '"b":[1.0,"x"]'),  # float literal
        text.replace('"b":[1,"x"]', '"b":[1e0,"x"]'),
        text.replace('"b":[1,"x"]', '"b":[NaN,"x"]'),
        text.replace('"b":[1,"x"]', '"b":[9007199254740992,"x"]'),
        text.replace('"subject":"s",', ""),  # missing key
        text.replace('"subject":"s",', '"subject":"s","extra":1,'),  # extra key
        text.replace('"object":{"a":null,', '"object":{"a":null,"a":null,'),  # duplicate key
        text.replace("12:00:00.123Z", "12:00:00Z"),
        text.replace("12:00:00.123Z", "25:00:00.123Z"),
        text.replace('"subject":"s"', '"subject":5'),
        text.replace('"object":{"a":null,"b":[1,"x"]}', '"object":[]'),
        "[]",
        "not json",
    ]
    for t in bad:
        with pytest.raises(EntryError):
            parse_entry(t.encode())
    with pytest.raises(EntryError):
        parse_entry(b"\xff")
    with pytest.raises(EntryError):
        parse_entry(text)  # type: ignore[arg-type]


json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**11) + 1, 10**11 - 1)
    | st.integers(10**12, MAX_SAFE_INT)
    | st.integers(-MAX_SAFE_INT, -(10**12))
    | st.text(st.characters(exclude_categories=("Cs", "Nd")), max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(st.characters(exclude_categories=("Cs", "Nd")), max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(
    obj=st.dictionaries(st.text(st.characters(exclude_categories=("Cs", "Nd")), max_size=8), json_values, max_size=5),
    at=st.datetimes(timezones=st.just(UTC)),
)
def test_make_parse_round_trip(obj: dict[str, Any], at: datetime) -> None:
    b = entry(obj, at=at)
    d = parse_entry(b)
    assert d["at"] == format_at(at)
    assert entry(d["object"], at=at) == b
