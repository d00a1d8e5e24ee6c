"""The public ledger API, checked the way an outside auditor would: with RFC 9162 and signed notes only.

Every answer is verified with `merkle.verify_inclusion` / `merkle.verify_consistency` (RFC 9162
§2.1.3.2 / §2.1.4.2), `note.open_checkpoint` (C2SP signed notes) and an independent Merkle
implementation (pymerkle); nothing here trusts the server's own computations.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import re
from typing import Any

import pytest
from pymerkle import InmemoryTree

from qorgau.kernel.ledger import merkle, note

API = "/api/v1/ledger"
RFC3339_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    raw = base64.b64decode(text, validate=True)
    assert b64(raw) == text, "hashes and entries must be standard padded base64"
    return raw


def append(kernel: Any, n: int) -> None:
    def many(tx: Any) -> None:
        for i in range(n):
            kernel.ledger.append(
                tx, entry_type="access", actor="official:ab12", action="case.read", subject="cd", obj={"i": i}
            )

    kernel.writer.run(many)


def grow(kernel: Any, sizes: list[int]) -> None:
    """Append entries and sign a head at each of `sizes` (the background signer may add more heads)."""
    for size in sizes:
        append(kernel, size - kernel.ledger.size())
        kernel.ledger.sign_if_grown(force=True)


def get_json(client: Any, path: str, **params: Any) -> Any:
    response = client.get(API + path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def published_verifiers(client: Any) -> list[note.Verifier]:
    return [note.Verifier.from_string(k["verifier_key"]) for k in get_json(client, "/keys")["keys"]]


def latest(client: Any) -> tuple[int, bytes]:
    """The latest signed (size, root), checked against its signature."""
    head = get_json(client, "/tree-head")
    cp = note.open_checkpoint(head["checkpoint"], published_verifiers(client))
    assert (cp.tree_size, cp.root_hash) == (head["tree_size"], unb64(head["root_hash"]))
    return cp.tree_size, cp.root_hash


def fetch_entries(client: Any, size: int) -> list[bytes]:
    leaves: list[bytes] = []
    while len(leaves) < size:
        page = get_json(client, "/entries", start=len(leaves), end=size - 1)["entries"]
        assert page, "the server must return at least one entry"
        for item in page:
            assert item["leaf_index"] == len(leaves)
            leaves.append(unb64(item["entry"]))
    return leaves


def test_an_empty_deployment_serves_the_signed_empty_tree(client: Any) -> None:
    response = client.get(API + "/checkpoint")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    cp = note.open_checkpoint(response.text, published_verifiers(client))
    assert cp.tree_size == 0 and cp.root_hash == merkle.EMPTY_ROOT
    head = get_json(client, "/tree-head")
    assert head["tree_size"] == 0 and head["root_hash"] == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
    assert head["checkpoint"] == response.text


def test_keys_are_published_with_their_validity(client: Any, kernel: Any) -> None:
    grow(kernel, [2])
    kernel.ledger.rotate_key()
    grow(kernel, [5])
    keys = get_json(client, "/keys")["keys"]
    assert len(keys) == 2
    for key in keys:
        assert set(key) == {
            "origin",
            "algorithm",
            "public_key",
            "key_hash",
            "verifier_key",
            "valid_from",
            "valid_until",
        }
        assert key["algorithm"] == "Ed25519"
        assert key["origin"] == kernel.settings.ledger_origin
        public = unb64(key["public_key"])
        verifier = note.Verifier.from_string(key["verifier_key"])
        assert verifier.public_key == public and verifier.name == key["origin"]
        assert key["key_hash"] == f"{note.key_hash(key['origin'], public):08x}"
        assert key["verifier_key"] == "+".join([key["origin"], key["key_hash"], b64(bytes([1]) + public)])
        assert RFC3339_UTC.fullmatch(key["valid_from"])
    assert RFC3339_UTC.fullmatch(keys[0]["valid_until"])
    assert keys[1]["valid_until"] is None
    # The heads signed before the rotation still verify with the old, still published key.
    heads = get_json(client, "/tree-heads")["tree_heads"]
    verifiers = [note.Verifier.from_string(k["verifier_key"]) for k in keys]
    for head in heads:
        note.open_checkpoint(head["checkpoint"], verifiers)


def test_tree_heads_are_signed_increasing_and_paged(client: Any, kernel: Any) -> None:
    grow(kernel, [1, 3, 4, 9, 17])
    verifiers = published_verifiers(client)
    heads = get_json(client, "/tree-heads")["tree_heads"]
    sizes = [h["tree_size"] for h in heads]
    assert sizes == sorted(set(sizes)) and sizes[0] == 0
    assert {1, 3, 4, 9, 17} <= set(sizes)
    for head in heads:
        assert set(head) == {"tree_size", "root_hash", "timestamp", "checkpoint"}
        assert isinstance(head["timestamp"], int) and head["timestamp"] > 1_600_000_000_000
        cp = note.open_checkpoint(head["checkpoint"], verifiers)
        assert (cp.tree_size, cp.root_hash) == (head["tree_size"], unb64(head["root_hash"]))
        assert cp.origin == kernel.settings.ledger_origin
    assert (
        get_json(client, "/tree-heads", after=3, limit=2)["tree_heads"] == [h for h in heads if h["tree_size"] > 3][:2]
    )
    assert get_json(client, "/tree-heads", after=10**12)["tree_heads"] == []
    assert get_json(client, "/tree-heads", limit=1000)["tree_heads"][: len(heads)] == heads
    assert get_json(client, "/tree-head") in get_json(client, "/tree-heads", after=sizes[-2])["tree_heads"]


def test_entries_recompute_the_signed_root(client: Any, kernel: Any) -> None:
    grow(kernel, [6, 23])
    size, root = latest(client)
    leaves = fetch_entries(client, size)
    assert merkle.root([merkle.leaf_hash(e) for e in leaves]) == root
    independent = InmemoryTree(algorithm="sha256")
    for leaf in leaves:
        independent.append_entry(leaf)
    assert independent.get_root(size) == root
    # Entries the server returns are the exact leaf bytes: RFC 8785 JSON of the six keys.
    assert leaves[0].startswith(b'{"action":"case.read","actor":"official:ab12","at":"')


def test_entries_stop_at_the_signed_size_and_at_a_thousand(client: Any, kernel: Any) -> None:
    kernel.settings = dataclasses.replace(kernel.settings, ledger_sign_interval_ms=3_600_000)
    grow(kernel, [1100])
    size, _ = latest(client)
    assert size == 1100
    append(kernel, 5)  # appended, not yet signed: not served
    page = get_json(client, "/entries", start=0, end=5000)["entries"]
    assert [e["leaf_index"] for e in page] == list(range(1000))
    page = get_json(client, "/entries", start=1090, end=2**63 - 1)["entries"]
    assert [e["leaf_index"] for e in page] == list(range(1090, 1100))
    assert get_json(client, "/entries", start=7, end=7)["entries"][0]["leaf_index"] == 7
    assert client.get(API + "/entries", params={"start": 1100, "end": 1104}).status_code == 400


def test_inclusion_proofs_verify_for_every_leaf_and_size(client: Any, kernel: Any) -> None:
    grow(kernel, [5, 13])
    size, root = latest(client)
    leaves = fetch_entries(client, size)
    roots = {n: merkle.root([merkle.leaf_hash(e) for e in leaves[:n]]) for n in range(1, size + 1)}
    assert roots[size] == root
    for n in range(1, size + 1):
        for i in range(n):
            body = get_json(client, "/proof/inclusion", leaf_index=i, tree_size=n)
            assert (body["leaf_index"], body["tree_size"]) == (i, n)
            path = [unb64(p) for p in body["inclusion_path"]]
            assert merkle.verify_inclusion(merkle.leaf_hash(leaves[i]), i, n, path, roots[n])
    # By leaf hash instead of index (RFC 9162 get-proof-by-hash).
    leaf_h = merkle.leaf_hash(leaves[9])
    body = get_json(client, "/proof/inclusion", hash=b64(leaf_h), tree_size=size)
    assert body["leaf_index"] == 9
    assert merkle.verify_inclusion(leaf_h, 9, size, [unb64(p) for p in body["inclusion_path"]], root)


def test_consistency_proofs_verify_between_any_two_sizes(client: Any, kernel: Any) -> None:
    grow(kernel, [3, 8, 11])
    size, _ = latest(client)
    leaves = fetch_entries(client, size)
    roots = {n: merkle.root([merkle.leaf_hash(e) for e in leaves[:n]]) for n in range(1, size + 1)}
    for n in range(1, size + 1):
        for m in range(1, n + 1):
            body = get_json(client, "/proof/consistency", first=m, second=n)
            assert (body["first"], body["second"]) == (m, n)
            path = [unb64(p) for p in body["consistency_path"]]
            assert merkle.verify_consistency(m, n, roots[m], roots[n], path)
            if m == n:
                assert path == []
    # Consecutive signed heads are consistent, as an auditor following the log checks.
    heads = get_json(client, "/tree-heads")["tree_heads"]
    for prev, cur in itertools.pairwise(heads):
        if prev["tree_size"]:
            body = get_json(client, "/proof/consistency", first=prev["tree_size"], second=cur["tree_size"])
            assert merkle.verify_consistency(
                prev["tree_size"],
                cur["tree_size"],
                unb64(prev["root_hash"]),
                unb64(cur["root_hash"]),
                [unb64(p) for p in body["consistency_path"]],
            )


BAD = ["", "abc", "-1", "1.5", "0x10", " 1", "+1", "1e3", "１", str(2**63), str(2**64), "9" * 40]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/entries", {"end": "1"}, "start"),
        ("/entries", {"start": "0"}, "end"),
        ("/entries", {"start": "3", "end": "1"}, "end"),
        ("/entries", {"start": "4", "end": "9"}, "start"),  # past the signed size
        ("/proof/inclusion", {"tree_size": "4"}, "leaf_index"),
        ("/proof/inclusion", {"leaf_index": "0"}, "tree_size"),
        ("/proof/inclusion", {"leaf_index": "4", "tree_size": "4"}, "leaf_index"),  # I >= N
        ("/proof/inclusion", {"leaf_index": "0", "tree_size": "0"}, "tree_size"),
        ("/proof/inclusion", {"leaf_index": "0", "tree_size": "5"}, "tree_size"),  # N > latest
        ("/proof/inclusion", {"hash": "nope", "tree_size": "4"}, "hash"),
        ("/proof/inclusion", {"hash": b64(b"\x01" * 31), "tree_size": "4"}, "hash"),
        ("/proof/inclusion", {"hash": b64(b"\x01" * 32), "leaf_index": "0", "tree_size": "4"}, "hash"),
        ("/proof/consistency", {"second": "4"}, "first"),
        ("/proof/consistency", {"first": "1"}, "second"),
        ("/proof/consistency", {"first": "0", "second": "4"}, "first"),  # M = 0
        ("/proof/consistency", {"first": "3", "second": "2"}, "first"),
        ("/proof/consistency", {"first": "1", "second": "5"}, "second"),  # N > latest
        ("/tree-heads", {"limit": "0"}, "limit"),
        ("/tree-heads", {"limit": "1001"}, "limit"),
    ],
)
def test_bad_parameters_are_400_problems(
    client: Any, kernel: Any, path: str, params: dict[str, str], field: str
) -> None:
    grow(kernel, [4])
    kernel.ledger.sign_if_grown(force=True)
    assert latest(client)[0] == 4
    response = client.get(API + path, params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] in ("validation.parameter", "ledger.out_of_range")
    assert body["field"] == field


@pytest.mark.parametrize("value", BAD)
def test_malformed_integers_are_400_never_500(client: Any, kernel: Any, value: str) -> None:
    grow(kernel, [3])
    for path, name, others in [
        ("/entries", "start", {"end": "1"}),
        ("/entries", "end", {"start": "0"}),
        ("/proof/inclusion", "leaf_index", {"tree_size": "2"}),
        ("/proof/inclusion", "tree_size", {"leaf_index": "0"}),
        ("/proof/consistency", "first", {"second": "2"}),
        ("/proof/consistency", "second", {"first": "1"}),
        ("/tree-heads", "after", {}),
        ("/tree-heads", "limit", {}),
    ]:
        if value == "" and name in ("after", "limit"):
            continue  # empty means absent: from the first head, the default limit
        response = client.get(API + path, params={**others, name: value})
        assert response.status_code == 400, (path, name, value, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] in ("validation.parameter", "ledger.out_of_range")
        assert response.json()["field"] == name


def test_an_unknown_leaf_hash_is_not_found(client: Any, kernel: Any) -> None:
    grow(kernel, [2])
    response = client.get(API + "/proof/inclusion", params={"hash": b64(b"\x07" * 32), "tree_size": "2"})
    assert response.status_code == 404
    assert response.json()["code"] == "ledger.not_found"


def test_an_unescaped_plus_in_a_hash_is_understood(client: Any, kernel: Any) -> None:
    grow(kernel, [40])
    size, root = latest(client)
    leaves = fetch_entries(client, size)
    for i, leaf in enumerate(leaves):
        text = b64(merkle.leaf_hash(leaf))
        if "+" in text:
            response = client.get(f"{API}/proof/inclusion?tree_size={size}&hash={text}")  # '+' arrives as ' '
            assert response.status_code == 200, response.text
            path = [unb64(p) for p in response.json()["inclusion_path"]]
            assert merkle.verify_inclusion(merkle.leaf_hash(leaf), i, size, path, root)
            return
    pytest.skip("no leaf hash with a '+' in this run")
