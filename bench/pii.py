"""PII benchmark: find_pii throughput on one core, and accuracy next to Presidio's pattern recognizers.

Run from the repository root::

    .venv/bin/python bench/pii.py              # throughput over >= 5 MB, accuracy tables
    .venv/bin/python bench/pii.py --mb 20      # a longer throughput run

1. Throughput: the texts of ``tests/data/pii/labelled.jsonl`` are repeated until they reach
   ``--mb`` megabytes of UTF-8 and passed one by one to :func:`qorgau.kernel.pii.find_pii` in this
   single process (one core). Printed as MB/s of UTF-8 (Cyrillic letters are 2 bytes) by the wall
   clock and per CPU second of this process (the steadier figure on a shared machine), and as
   millions of characters per second.
2. Accuracy: per-label precision / recall / F1 with exact span match on the ``tune`` and
   ``heldout`` splits of the same file, for ``find_pii`` and, on the labels Presidio has (EMAIL,
   CARD = CREDIT_CARD, PHONE = PHONE_NUMBER, IBAN = IBAN_CODE), for Microsoft Presidio's pattern
   recognizers (EmailRecognizer, CreditCardRecognizer, PhoneRecognizer with region KZ,
   IbanRecognizer), called directly with ``nlp_artifacts=None``: no spaCy model is needed or loaded.

Presidio is for this comparison only and is never a runtime dependency of Qorgau. Install it into
the virtual environment with::

    .venv/bin/pip install presidio-analyzer

Without it, the comparison is skipped. Its EmailRecognizer uses ``tldextract``; the benchmark
points that at the suffix list bundled with the package, so nothing is fetched from the network.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ may hold modules named like standard-library ones (http.py): keep it off sys.path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable, Iterable  # noqa: E402

from qorgau.kernel.pii import LABELS, find_pii  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "pii" / "labelled.jsonl"
PRESIDIO_LABELS = {"EMAIL_ADDRESS": "EMAIL", "CREDIT_CARD": "CARD", "PHONE_NUMBER": "PHONE", "IBAN_CODE": "IBAN"}
COMPARED = ("EMAIL", "CARD", "PHONE", "IBAN")

Finder = Callable[[str], Iterable[tuple[int, int, str]]]


def load() -> list[dict]:
    return [json.loads(line) for line in DATA.read_text("utf-8").splitlines() if line.strip()]


def evaluate(rows: list[dict], find: Finder, only: Iterable[str] = LABELS) -> dict[str, tuple[float, float, float]]:
    """Per label (precision, recall, F1) with exact span match."""
    keep = set(only)
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for row in rows:
        gold = {(s["start"], s["end"], s["label"]) for s in row["spans"] if s["label"] in keep}
        pred = {tuple(s) for s in find(row["text"]) if s[2] in keep}
        for *_, label in gold & pred:
            tp[label] += 1
        for *_, label in pred - gold:
            fp[label] += 1
        for *_, label in gold - pred:
            fn[label] += 1
    out = {}
    for label in only:
        p = tp[label] / (tp[label] + fp[label]) if tp[label] + fp[label] else 1.0
        r = tp[label] / (tp[label] + fn[label]) if tp[label] + fn[label] else 1.0
        out[label] = (p, r, 2 * p * r / (p + r) if p + r else 0.0)
    return out


def throughput(texts: list[str], megabytes: float) -> tuple[float, float, float, int]:
    """(MB/s wall clock, MB/s CPU time, million chars/s wall, bytes) over ``texts`` repeated to ``megabytes``."""
    sizes = [len(t.encode("utf-8")) for t in texts]
    target = int(megabytes * 1_000_000)
    reps = max(1, -(-target // sum(sizes)))
    corpus = texts * reps
    total_bytes = sum(sizes) * reps
    total_chars = sum(len(t) for t in texts) * reps
    find_pii(texts[0])  # load the lexicons and compile the patterns outside the timing
    start, cpu = time.perf_counter(), time.process_time()
    for text in corpus:
        find_pii(text)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    return total_bytes / elapsed / 1e6, total_bytes / cpu / 1e6, total_chars / elapsed / 1e6, total_bytes


def presidio_finder() -> Finder | None:
    try:
        import tldextract
        from presidio_analyzer.predefined_recognizers import (
            CreditCardRecognizer,
            EmailRecognizer,
            IbanRecognizer,
            PhoneRecognizer,
        )
    except ImportError:
        return None
    # Offline: use the public suffix list shipped with tldextract instead of downloading it.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())
    recognizers = [
        (EmailRecognizer(), ["EMAIL_ADDRESS"]),
        (CreditCardRecognizer(), ["CREDIT_CARD"]),
        (PhoneRecognizer(supported_regions=("KZ",)), ["PHONE_NUMBER"]),
        (IbanRecognizer(), ["IBAN_CODE"]),
    ]

    def find(text: str) -> list[tuple[int, int, str]]:
        spans = set()
        for rec, entities in recognizers:
            for res in rec.analyze(text, entities=entities, nlp_artifacts=None) or []:
                spans.add((res.start, res.end, PRESIDIO_LABELS[res.entity_type]))
        return sorted(spans)

    return find


def table(title: str, rows: dict[str, dict[str, tuple[float, float, float]]], labels: Iterable[str]) -> str:
    names = list(rows)
    head = f"| label | {' | '.join(f'{n} P / R / F1' for n in names)} |"
    lines = [f"**{title}**", "", head, "|---" * (len(names) + 1) + "|"]
    for label in labels:
        cells = [" / ".join(f"{v:.3f}" for v in rows[n][label]) for n in names]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--mb", type=float, default=5.0, help="megabytes of text for the throughput run")
    args = parser.parse_args()
    rows = load()
    texts = [r["text"] for r in rows]
    mbs, cpu_mbs, mchars, total = throughput(texts, args.mb)
    print(
        f"find_pii throughput, one core: {mbs:.2f} MB/s UTF-8 wall clock ({mchars:.2f} M chars/s), "
        f"{cpu_mbs:.2f} MB/s per CPU second, over {total / 1e6:.1f} MB"
    )

    def ours(text: str) -> list[tuple[int, int, str]]:
        return [tuple(s) for s in find_pii(text)]

    presidio = presidio_finder()
    if presidio is None:
        print("presidio-analyzer is not installed: comparison skipped (.venv/bin/pip install presidio-analyzer)")
    for split in ("tune", "heldout"):
        part = [r for r in rows if r["split"] == split]
        print()
        print(table(f"{split} ({len(part)} texts), all labels", {"qorgau": evaluate(part, ours)}, LABELS))
        if presidio is not None:
            results = {
                "qorgau": evaluate(part, ours, COMPARED),
                "presidio": evaluate(part, presidio, COMPARED),
            }
            print()
            print(table(f"{split}: qorgau vs Presidio pattern recognizers", results, COMPARED))
    if presidio is not None:
        start = time.perf_counter()
        for text in texts:
            presidio(text)
        elapsed = time.perf_counter() - start
        size = sum(len(t.encode("utf-8")) for t in texts)
        print(f"\nPresidio (4 pattern recognizers) throughput: {size / elapsed / 1e6:.2f} MB/s UTF-8")
    print("\nrepeat with: .venv/bin/python bench/pii.py" + (f" --mb {args.mb:g}" if args.mb != 5.0 else ""))


if __name__ == "__main__":
    main()
