"""C2SP signed notes and tlog-checkpoints, checked against golang.org/x/mod/sumdb/note vectors."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qorgau.kernel.ledger.note import (
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    format_checkpoint,
    generate_seed,
    key_hash,
    open_checkpoint,
    open_note,
    parse_checkpoint,
    sign_checkpoint,
    sign_note,
)

# From golang.org/x/mod/sumdb/note/note_test.go (TestSign, TestOpen).
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_B64 = "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
ENOCH_B64 = "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ="
PETER_SIG = "— PeterNeumann " + PETER_B64 + "\n"
ENOCH_SIG = "— EnochRoot " + ENOCH_B64 + "\n"

# From c2sp.org/tlog-checkpoint.
C2SP_CHECKPOINT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"


@pytest.fixture(scope="module")
def peter() -> Signer:
    return Signer.from_string(PETER_SKEY)


# --------------------------------------------------------------------------
# Go compatibility


def test_go_signer_and_verifier_keys(peter: Signer) -> None:
    assert peter.name == "PeterNeumann"
    assert peter.key_hash == 0xC74F20A3
    assert peter.key_id == bytes.fromhex("c74f20a3")
    assert peter.verifier_key == PETER_VKEY
    assert peter.signer_key == PETER_SKEY
    v = Verifier.from_string(PETER_VKEY)
    assert v.name == "PeterNeumann"
    assert v.key_hash == peter.key_hash
    assert v.public_key == peter.public_key
    assert v.verifier_key == PETER_VKEY
    raw = base64.b64decode(PETER_VKEY.split("+")[2])
    assert key_hash("PeterNeumann", raw[1:]) == 0xC74F20A3
    assert hashlib.sha256(b"PeterNeumann\n" + raw).digest()[:4] == peter.key_id


def test_go_sign_vector(peter: Signer) -> None:
    assert sign_note(TEXT, [peter]) == TEXT + "\n" + PETER_SIG
    assert sign_note(TEXT, peter) == TEXT + "\n" + PETER_SIG


def test_go_open_vectors() -> None:
    pv = Verifier.from_string(PETER_VKEY)
    ev = Verifier.from_string(ENOCH_VKEY)
    msg = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    assert open_note(msg, [pv]) == (TEXT, ["PeterNeumann"])
    assert open_note(msg, [ev]) == (TEXT, ["EnochRoot"])
    assert open_note(msg, [pv, ev]) == (TEXT, ["PeterNeumann", "EnochRoot"])
    assert open_note(msg.encode(), [pv]) == (TEXT, ["PeterNeumann"])
    with pytest.raises(NoteError, match="no verifiable signatures"):
        open_note(msg, [])
    # Duplicated verifier for a used key is ambiguous; unused is fine.
    with pytest.raises(NoteError, match="ambiguous key EnochRoot"):
        open_note(TEXT + "\n" + ENOCH_SIG, [ev, pv, ev])
    assert open_note(TEXT + "\n" + PETER_SIG, [ev, pv, ev]) == (TEXT, ["PeterNeumann"])
    # Repeated signatures by one key count once.
    assert open_note(TEXT + "\n" + PETER_SIG * 3, [pv]) == (TEXT, ["PeterNeumann"])
    # Too many signatures.
    with pytest.raises(NoteError, match="too many"):
        open_note(TEXT + "\n" + PETER_SIG * 101, [pv])


def test_go_invalid_signature() -> None:
    pv = Verifier.from_string(PETER_VKEY)
    bad = TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(NoteError, match="invalid signature for key PeterNeumann\\+c74f20a3"):
        open_note(bad, [pv])


@pytest.mark.parametrize(
    "msg",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        TEXT + "\n" + "— Bad Name " + PETER_B64,
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + "- PeterNeumann " + PETER_B64 + "\n",
        TEXT + "\n" + "— PeterNeumann x08go\n",
        TEXT + "\n" + "— PeterNeumann \n",
        TEXT + "\n" + "— PeterNeumann not*base64\n",
        TEXT.replace("\n", "\r\n", 1) + "\n" + PETER_SIG,
    ],
)
def test_go_malformed_notes(msg: str) -> None:
    with pytest.raises(NoteError):
        open_note(msg, [Verifier.from_string(PETER_VKEY)])


def test_invalid_utf8_bytes_rejected() -> None:
    with pytest.raises(NoteError):
        open_note(b"\xff" + (TEXT + "\n" + PETER_SIG).encode(), [Verifier.from_string(PETER_VKEY)])


def test_go_verifier_key_manglings_rejected() -> None:
    b = PETER_VKEY
    for i in range(len(b) + 1):
        for j in range(i + 1, len(b) + 1):
            if i != 0 or j != len(b):
                with pytest.raises(NoteError):
                    Verifier.from_string(b[i:j])
    for i in range(len(b)):
        with pytest.raises(NoteError):
            Verifier.from_string(b[:i] + chr(ord(b[i]) + 1) + b[i + 1 :])
    for bad in [
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",  # wrong key length
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # unknown algorithm
    ]:
        with pytest.raises(NoteError):
            Verifier.from_string(bad)


def test_go_signer_key_manglings_rejected() -> None:
    b = PETER_SKEY
    for i in range(len(b) + 1):
        for j in range(i + 1, len(b) + 1):
            if i != 0 or j != len(b):
                with pytest.raises(NoteError):
                    Signer.from_string(b[i:j])
    for i in range(len(b)):
        with pytest.raises(NoteError):
            Signer.from_string(b[:i] + chr(ord(b[i]) + 1) + b[i + 1 :])


# --------------------------------------------------------------------------
# Round trips and rejections


def test_round_trip_and_tampering() -> None:
    a = Signer(generate_seed(), "qorgau.example/ledger")
    b = Signer(generate_seed(), "witness.example/w1")
    note = sign_note("hello\n\nworld\n", [a, b])
    va, vb = a.verifier(), Verifier.from_string(b.verifier_key)
    assert open_note(note, [va, vb]) == ("hello\n\nworld\n", ["qorgau.example/ledger", "witness.example/w1"])
    assert open_note(note, [vb]) == ("hello\n\nworld\n", ["witness.example/w1"])
    # Tampered body.
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(note.replace("world", "w0rld"), [va])
    # Wrong key under the same name: different key hash, so unknown, so unverified.
    impostor = Signer(generate_seed(), "qorgau.example/ledger")
    with pytest.raises(NoteError, match="no verifiable"):
        open_note(sign_note("hello\n", impostor), [va])
    # Known name and key hash, but signed by another key: rejected outright.
    forged_line = note.split("\n")[-3]
    sig = base64.b64decode(forged_line.split(" ")[2])
    other_sig = impostor.sign(b"hello\n\nworld\n")
    forged = "hello\n\nworld\n\n— qorgau.example/ledger " + base64.b64encode(sig[:4] + other_sig).decode() + "\n"
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(forged, [va])
    # Wrong key hash on a genuine signature: the line no longer names a known key.
    rehashed = "hello\n\nworld\n\n— qorgau.example/ledger " + base64.b64encode(b"\0\0\0\0" + sig[4:]).decode() + "\n"
    with pytest.raises(NoteError, match="no verifiable"):
        open_note(rehashed, [va])
    # Wrong name with the right key hash: unknown too.
    with pytest.raises(NoteError, match="no verifiable"):
        open_note(note.replace("— qorgau.example/ledger", "— qorgau.example/other"), [va])


def test_signing_rejects_bad_input() -> None:
    s = Signer(generate_seed(), "n")
    for body in ["no newline", "ctrl\x07\n", ""]:
        with pytest.raises(NoteError):
            sign_note(body, [s])
    with pytest.raises(NoteError):
        sign_note("x\n", [])
    for name in ["", "a b", "a+b", "a\tb", "a\u00a0b"]:
        with pytest.raises(NoteError):
            Signer(generate_seed(), name)
    with pytest.raises(NoteError):
        Signer(b"short", "n")
    assert len(generate_seed()) == 32
    assert generate_seed() != generate_seed()


@settings(max_examples=50, deadline=None)
@given(
    lines=st.lists(
        st.text(st.characters(min_codepoint=0x20, exclude_categories=("Cs",)), max_size=40),
        min_size=1,
        max_size=6,
    ),
    seed=st.binary(min_size=32, max_size=32),
)
def test_round_trip_property(lines: list[str], seed: bytes) -> None:
    body = "".join(line + "\n" for line in lines)
    s = Signer(seed, "prop.example/log")
    text, names = open_note(sign_note(body, s), [s.verifier()])
    assert (text, names) == (body, ["prop.example/log"])
    assert Signer.from_string(s.signer_key).public_key == s.public_key


# --------------------------------------------------------------------------
# Checkpoints


def test_checkpoint_format_and_parse() -> None:
    cp = Checkpoint(
        "qorgau.kz/ledger/akimat-1",
        8,
        bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
    )
    text = format_checkpoint(cp)
    assert text == "qorgau.kz/ledger/akimat-1\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
    assert parse_checkpoint(text) == cp
    empty = Checkpoint("o", 0, hashlib.sha256(b"").digest())
    assert parse_checkpoint(format_checkpoint(empty)) == empty


def test_c2sp_example_checkpoint() -> None:
    cp = parse_checkpoint(C2SP_CHECKPOINT)
    assert cp.origin == "example.com/behind-the-sofa"
    assert cp.tree_size == 20852163
    assert base64.b64encode(cp.root_hash).decode() == "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    assert format_checkpoint(cp) == C2SP_CHECKPOINT


def test_checkpoint_extension_lines_parsed() -> None:
    cp = parse_checkpoint(C2SP_CHECKPOINT + "ext one\n")
    assert cp.extensions == ("ext one",)
    assert format_checkpoint(cp) == C2SP_CHECKPOINT + "ext one\n"


ROOT_B64 = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="


@pytest.mark.parametrize(
    "text",
    [
        "",
        "o\n5\n",
        f"o\n5\n{ROOT_B64}",  # no final newline
        f"\n5\n{ROOT_B64}\n",  # empty origin
        f"o\n05\n{ROOT_B64}\n",  # leading zero
        f"o\n-5\n{ROOT_B64}\n",
        f"o\n+5\n{ROOT_B64}\n",
        f"o\n 5\n{ROOT_B64}\n",
        f"o\n5 \n{ROOT_B64}\n",
        "o\n5\u0660\n" + ROOT_B64 + "\n",  # non-ASCII digit
        f"o\n0x5\n{ROOT_B64}\n",
        f"o\n{2**64}\n{ROOT_B64}\n",  # beyond uint64
        f"o\n\n{ROOT_B64}\n",
        "o\n5\n\n",
        f"o\n5\n{ROOT_B64[:-1]}\n",  # unpadded
        f"o\n5\n{ROOT_B64[:-4]}\n",  # 30 bytes
        f"o\n5\n{base64.b64encode(bytes(33)).decode()}\n",  # 33 bytes
        f"o\n5\n{ROOT_B64.replace('/', '_')}\n",  # not the standard alphabet
        "o\n5\n" + ROOT_B64[:-2] + "J=\n",  # non-canonical trailing bits
        f"o\n5\n {ROOT_B64}\n",
        f"o\n5\n{ROOT_B64}\n\n",  # empty extension line
        f"o\n5\n{ROOT_B64}\r\n",
        f"o\r\n5\n{ROOT_B64}\n",
        f"o\x00\n5\n{ROOT_B64}\n",
    ],
)
def test_parse_checkpoint_rejects_malformed(text: str) -> None:
    with pytest.raises(NoteError):
        parse_checkpoint(text)


def test_checkpoint_constructor_validates() -> None:
    root = bytes(32)
    for args in [("", 1, root), ("o\n", 1, root), ("o", -1, root), ("o", 2**64, root), ("o", 1, root[:31])]:
        with pytest.raises(NoteError):
            Checkpoint(*args)  # type: ignore[arg-type]
    with pytest.raises(NoteError):
        Checkpoint("o", 1, root, ("",))


def test_signed_checkpoint_round_trip() -> None:
    s = Signer(generate_seed(), "qorgau.kz/ledger/test")
    cp = Checkpoint(s.name, 1234, hashlib.sha256(b"x").digest())
    note = sign_checkpoint(cp, s)
    assert note.startswith(format_checkpoint(cp) + "\n— qorgau.kz/ledger/test ")
    assert open_checkpoint(note, [s.verifier()]) == cp
    # A signature by a known key with another name does not vouch for this origin.
    other = Signer(generate_seed(), "witness.example")
    with pytest.raises(NoteError, match="origin"):
        open_checkpoint(sign_note(format_checkpoint(cp), other), [other.verifier()])
    with pytest.raises(NoteError):
        sign_checkpoint(cp, other)
    # Tampered size.
    with pytest.raises(NoteError):
        open_checkpoint(note.replace("\n1234\n", "\n1235\n"), [s.verifier()])
