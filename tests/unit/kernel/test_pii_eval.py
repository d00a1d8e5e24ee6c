"""Per-label precision, recall and F1 of :func:`qorgau.kernel.pii.find_pii` on the labelled set.

Exact span match (start, end and label must all agree). ``tests/data/pii/labelled.jsonl`` has a
``tune`` split (templates and names the rules were tuned on) and a ``heldout`` split (other
templates, names, streets and towns); both must meet the goals: F1 ≥ 0.97 for the typed
identifiers, ≥ 0.85 for PERSON and ADDRESS. Run this file as a script to print the tables::

    .venv/bin/python tests/unit/kernel/test_pii_eval.py
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from pathlib import Path

import pytest

from qorgau.kernel.pii import LABELS, find_pii

DATA = Path(__file__).resolve().parents[2] / "data" / "pii" / "labelled.jsonl"
TYPED = ("IIN", "BIN", "PHONE", "EMAIL", "CARD", "IBAN", "PLATE")
GOALS = {label: 0.97 for label in TYPED} | {"PERSON": 0.85, "ADDRESS": 0.85}


def load(split: str | None = None) -> list[dict]:
    rows = [json.loads(line) for line in DATA.read_text("utf-8").splitlines() if line.strip()]
    return [r for r in rows if split is None or r.get("split") == split]


def evaluate(rows: list[dict], find=find_pii) -> dict[str, dict[str, float]]:
    """Return ``{label: {"tp", "fp", "fn", "precision", "recall", "f1"}}`` with exact span match."""
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for row in rows:
        gold = {(s["start"], s["end"], s["label"]) for s in row["spans"]}
        pred = {(s[0], s[1], s[2]) for s in find(row["text"])}
        for _, _, label in gold & pred:
            tp[label] += 1
        for _, _, label in pred - gold:
            fp[label] += 1
        for _, _, label in gold - pred:
            fn[label] += 1
    out = {}
    for label in LABELS:
        p = tp[label] / (tp[label] + fp[label]) if tp[label] + fp[label] else 1.0
        r = tp[label] / (tp[label] + fn[label]) if tp[label] + fn[label] else 1.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        out[label] = {"tp": tp[label], "fp": fp[label], "fn": fn[label], "precision": p, "recall": r, "f1": f}
    return out


def table(metrics: dict[str, dict[str, float]]) -> str:
    lines = [f"{'label':8} {'P':>6} {'R':>6} {'F1':>6} {'tp':>5} {'fp':>4} {'fn':>4}"]
    for label, m in metrics.items():
        lines.append(
            f"{label:8} {m['precision']:6.3f} {m['recall']:6.3f} {m['f1']:6.3f} {m['tp']:5d} {m['fp']:4d} {m['fn']:4d}"
        )
    return "\n".join(lines)


def test_labelled_set_is_large_and_consistent():
    rows = load()
    assert len(rows) >= 300
    langs = Counter(r["lang"] for r in rows)
    assert langs["ru"] / len(rows) > 0.3 and langs["kk"] / len(rows) > 0.3 and langs["en"] / len(rows) > 0.15
    assert {r["split"] for r in rows} == {"tune", "heldout"}
    for row in rows:
        spans = sorted((s["start"], s["end"]) for s in row["spans"])
        for (_, e1), (s2, _) in itertools.pairwise(spans):
            assert e1 <= s2, row["text"]
        for s in row["spans"]:
            assert 0 <= s["start"] < s["end"] <= len(row["text"]) and s["label"] in LABELS


@pytest.mark.parametrize("split", ["tune", "heldout"])
def test_goals_per_label(split):
    metrics = evaluate(load(split))
    failing = {label: round(m["f1"], 3) for label, m in metrics.items() if m["tp"] + m["fn"] and m["f1"] < GOALS[label]}
    assert not failing, f"{split}: below goal: {failing}\n{table(metrics)}"


if __name__ == "__main__":
    for split in ("tune", "heldout"):
        print(f"== {split}")
        print(table(evaluate(load(split))))
