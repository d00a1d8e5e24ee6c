"""Which parts of a report's text are personal data, and the public text without them.

The platform's detector is :func:`qorgau.kernel.pii.find_pii` (names, addresses, plates, identifiers).
Until it is installed, a fallback here finds what the kernel can already validate: IINs and BINs
(checksum and date), Kazakh phone numbers and e-mail addresses. Either way spans never overlap, and
the public text replaces each one with ``[LABEL]``.
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from qorgau.kernel import kz


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str


@dataclass(frozen=True)
class Segment:
    """A piece of text, with the label it is replaced by in public (None: it stays)."""

    text: str
    label: str | None


_TWELVE = re.compile(r"(?<![\d])\d{6}[ \u00a0]?\d{6}(?![\d])")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+7|8)[ \u00a0\-]*\(?\d{3}\)?[ \u00a0\-]*\d{3}[ \u00a0\-]*\d{2}[ \u00a0\-]*\d{2}(?!\d)"
)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")


def _fallback_spans(text: str) -> list[Span]:
    found: list[Span] = []
    for m in _TWELVE.finditer(text):
        kind = kz.classify_identifier(re.sub(r"\s", "", m.group()))
        if kind:
            found.append(Span(m.start(), m.end(), kind.upper()))
    for m in _PHONE.finditer(text):
        try:
            kz.parse_phone(m.group(), strict=False)
        except kz.InvalidIdentifier:
            continue
        found.append(Span(m.start(), m.end(), "PHONE"))
    found.extend(Span(m.start(), m.end(), "EMAIL") for m in _EMAIL.finditer(text))
    return found


@lru_cache(maxsize=1)
def _kernel_detector() -> Any:
    try:
        module = importlib.import_module("qorgau.kernel.pii")
    except ImportError:
        return None
    return getattr(module, "find_pii", None)


def _field(span: Any, name: str) -> Any:
    return span[name] if isinstance(span, dict) else getattr(span, name)


def find_spans(text: str) -> list[Span]:
    """Personal data in `text`: sorted, non-overlapping spans (Python string offsets)."""
    detector = _kernel_detector()
    if detector is not None:
        raw = [Span(int(_field(s, "start")), int(_field(s, "end")), str(_field(s, "label"))) for s in detector(text)]
    else:
        raw = _fallback_spans(text)
    spans: list[Span] = []
    for span in sorted(raw, key=lambda s: (s.start, -s.end)):
        if span.end <= span.start:
            continue
        if spans and span.start < spans[-1].end:
            continue
        spans.append(span)
    return spans


def segments(text: str) -> list[Segment]:
    """The text cut into kept and redacted pieces, for the preview a reporter sees before sending."""
    out: list[Segment] = []
    pos = 0
    for span in find_spans(text):
        if span.start > pos:
            out.append(Segment(text[pos : span.start], None))
        out.append(Segment(text[span.start : span.end], span.label))
        pos = span.end
    if pos < len(text):
        out.append(Segment(text[pos:], None))
    return out


def redact(text: str) -> str:
    """The public text: each personal-data span replaced by ``[LABEL]``."""
    return "".join(s.text if s.label is None else f"[{s.label}]" for s in segments(text))
