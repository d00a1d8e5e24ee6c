"""Personal data in free text: detection and redaction for Russian, Kazakh and English reports.

:func:`find_pii` returns the personal data found in a text as sorted, non-overlapping
:class:`Span` objects (Python string offsets, end exclusive) with one of the :data:`LABELS`;
:func:`redact` replaces each span with ``[LABEL]``. :func:`scan_stream` and :func:`redact_stream`
implement the JSON-lines contract of ``qorgau pii scan`` / ``qorgau pii redact``.

Approach (no model, no network): regular expressions compiled once with :mod:`re`, validators and
bundled word lists.

- Typed identifiers are found by pattern and kept only when their validator agrees: ``IIN`` and
  ``BIN`` by :func:`qorgau.kernel.kz.validate_iin` / :func:`~qorgau.kernel.kz.validate_bin`
  (control digit, a birth date that exists and is not in the future), ``CARD`` by Luhn, ``IBAN``
  (``KZ``) by ISO 13616 mod-97, ``PHONE`` by :func:`qorgau.kernel.kz.parse_phone` (``phonenumbers``,
  region KZ; unallocated numbers only in Kazakh mobile or landline ranges), ``PLATE`` by the
  Kazakh plate layout with a region code 01-20, ``EMAIL`` by pattern.
- ``ADDRESS`` is parsed around a street or microdistrict keyword (``ул.``, ``көшесі``,
  ``Avenue``, ``мкр.``…) or a known town, and is kept only with a house number; the span is extended
  to a postal code, region, town or district written before it and to the flat, office or town
  written after it.
- ``PERSON`` is rule-based over capitalised words: given-name lexicons (Kazakh, Russian, English,
  with their generated case forms and Latin transliterations), surname and patronymic endings
  (``-ов/-ева/-ин/-ский``, ``-ұлы/-қызы``, ``-ович/-овна``, Latin ``-ov/-eva/-uly``), initials and
  titles; names after a street, town or shop keyword, before ``көшесі``/``атындағы``, or in quotes
  are not persons.

Overlaps are resolved by priority: typed identifiers (validated) first, then addresses (which
swallow a street named after a person), then persons; within a label the longer span wins. The word
lists live in ``qorgau/kernel/data/pii/*.txt`` and can be extended without touching this code.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources
from typing import NamedTuple, TextIO

from qorgau.kernel import kz

__all__ = [
    "LABELS",
    "PiiInputError",
    "Span",
    "find_pii",
    "redact",
    "redact_stream",
    "scan_stream",
]

LABELS: tuple[str, ...] = ("IIN", "BIN", "PHONE", "EMAIL", "CARD", "IBAN", "PLATE", "PERSON", "ADDRESS")


class Span(NamedTuple):
    """One item of personal data: ``text[start:end]`` (Python string offsets, end exclusive)."""

    start: int
    end: int
    label: str


class PiiInputError(ValueError):
    """A line of JSON-lines input is malformed; ``line_no`` counts from 1."""

    def __init__(self, line_no: int, message: str) -> None:
        super().__init__(f"line {line_no}: {message}")
        self.line_no = line_no
        self.message = message


# --------------------------------------------------------------------------------------------------
# Character classes
# --------------------------------------------------------------------------------------------------

_UP = "A-ZА-ЯЁӘҒҚҢӨҰҮҺІ"
_LO = "a-zа-яёәғқңөұүһі"
_CYR_LO = "а-яёәғқңөұүһі"
_SP = r"[ \t\u00a0]"
_MASK = "\x00"
_NOT_LETTER_BEFORE = r"(?<![^\W\d_])"
_NOT_LETTER_AFTER = r"(?![^\W\d_])"

# Priority of the typed labels when their candidates overlap (lower wins).
_PRIORITY = {"EMAIL": 0, "IBAN": 1, "CARD": 2, "IIN": 3, "BIN": 3, "PHONE": 4, "PLATE": 5}

# --------------------------------------------------------------------------------------------------
# Typed identifiers
# --------------------------------------------------------------------------------------------------

_DIGIT = re.compile(r"\d")
_EMAIL = re.compile(
    r"(?<![\w.+\-])[A-Za-z0-9](?:[A-Za-z0-9._%+\-]*[A-Za-z0-9_%+\-])?@"
    r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,24}(?![\w\-])"
)
_IBAN = re.compile(r"(?<![A-Za-z0-9])[Kk][Zz]\d{2}(?:[A-Za-z0-9]{16}|(?:[ \-][A-Za-z0-9]{4}){4})(?![A-Za-z0-9])")
_CARD = re.compile(r"[2-6](?<!\d[2-6])(?<!\d[ \-][2-6])\d{3}([ \-]?)\d{4}\1\d{4}\1\d{4}(?!\d)(?!\1\d)(?![ \-]?\*)")
_ID12 = re.compile(
    r"\d(?<!\d\d)(?:\d{11}(?!\d)"
    r"|(?<!\d[ \-]\d)(?:\d{5}[ \-]\d{6}|\d{3}([ \-])\d{4}\1\d{4}|\d{2}([ \-])\d{3}\2\d{3}\2\d{3})(?!\d)(?![ \-]\d))"
)
_PHONE_CHUNK = re.compile(r"(?<![\w+])(?:\+[ \t]?)?\(?\d[\d \t\u00a0().\-]{7,60}\d(?!\w)")
_DIGIT_GROUP = re.compile(r"\d+")
_NOT_PHONE_AFTER = re.compile(r"[ \t]*(?:тг|тенге|₸|kzt|tenge|руб|usd|\$|%|шт|км|km)(?![^\W\d_])", re.I)
_PLATE_LETTERS = "A-ZАВЕКМНОРСТХУ"
_PLATE = re.compile(
    rf"(?<![\w\-])\d{{3}}[ \-]?(?:[{_PLATE_LETTERS}]{{2,3}}|[a-z]{{3}})[ \-]?(?P<region>\d{{2}})(?![\w\-])"
)
_LANDLINE_OR_MOBILE = re.compile(r"7[12]\d|70[0-8]|747|75\d|76[0-4]|77[1-8]|785")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _iban_ok(compact: str) -> bool:
    value = compact.upper()
    if len(value) != 20 or not value[4:7].isdigit():
        return False
    rearranged = value[4:] + value[:4]
    numeric = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(numeric) % 97 == 1


def _find_typed(text: str, today: date) -> list[Span]:
    found: list[Span] = []
    if "@" in text:
        found.extend(Span(m.start(), m.end(), "EMAIL") for m in _EMAIL.finditer(text))
    if not _DIGIT.search(text):
        return found
    if "KZ" in text or "kz" in text or "Kz" in text or "kZ" in text:
        for m in _IBAN.finditer(text):
            if _iban_ok(re.sub(r"[ \-]", "", m.group())):
                found.append(Span(m.start(), m.end(), "IBAN"))
    for m in _CARD.finditer(text):
        if _luhn_ok(re.sub(r"[ \-]", "", m.group())):
            found.append(Span(m.start(), m.end(), "CARD"))
    for m in _ID12.finditer(text):
        digits = re.sub(r"[ \-]", "", m.group())
        if kz.is_valid_iin(digits, today=today):
            found.append(Span(m.start(), m.end(), "IIN"))
        elif kz.is_valid_bin(digits, today=today):
            found.append(Span(m.start(), m.end(), "BIN"))
    pos = 0
    while m := _PHONE_CHUNK.search(text, pos):
        phones = _phones_in_chunk(text, m.start(), m.end())
        found.extend(phones)
        # A chunk is at most ~60 characters: continue right after its last phone, not at its end.
        pos = phones[-1].end if phones else m.end()
    for m in _PLATE.finditer(text):
        if 1 <= int(m.group("region")) <= 20:
            found.append(Span(m.start(), m.end(), "PLATE"))
    return found


def _phone_ok(candidate: str) -> bool:
    try:
        phone = kz.parse_phone(candidate, strict=False)
    except kz.InvalidIdentifier:
        return False
    nsn = phone.e164[2:]
    return phone.allocated or bool(_LANDLINE_OR_MOBILE.match(nsn))


def _phones_in_chunk(text: str, start: int, end: int) -> list[Span]:
    """Split a run of digits and separators into Kazakh phone numbers (10 or 11 digits)."""
    groups = [(m.start(), m.end()) for m in _DIGIT_GROUP.finditer(text, start, end)]
    spans: list[Span] = []
    i = 0
    while i < len(groups):
        best: tuple[int, int, int] | None = None
        count = 0
        for j in range(i, len(groups)):
            if j > i and groups[j][0] - groups[j - 1][1] > 3:
                break
            count += groups[j][1] - groups[j][0]
            if count > 11:
                break
            if count < 10:
                continue
            s, e = groups[i][0], groups[j][1]
            first = text[s]
            if count == 10 and first != "7":
                continue
            if count == 11 and first not in "78":
                continue
            if s > start and text[s - 1] == "+":
                s -= 1
            elif s > start + 1 and text[s - 1] in " \t" and text[s - 2] == "+":
                s -= 2
            elif s > start and text[s - 1] == "(" and j > i and text.startswith(")", groups[i][1]):
                s -= 1
            candidate = text[s:e]
            if candidate.count("(") != candidate.count(")"):
                continue
            if _NOT_PHONE_AFTER.match(text, e):
                continue
            if _phone_ok(candidate):
                best = (s, e, j)
        if best is None:
            i += 1
            continue
        spans.append(Span(best[0], best[1], "PHONE"))
        i = best[2] + 1
    return spans


def _resolve(cands: Iterable[Span], priority: dict[str, int]) -> list[Span]:
    """Keep non-overlapping candidates: higher priority first, then the longer, then the earlier."""
    chosen: list[Span] = []
    for span in sorted(cands, key=lambda s: (priority.get(s.label, 9), s.start - s.end, s.start)):
        if all(span.end <= c.start or span.start >= c.end for c in chosen):
            chosen.append(span)
    chosen.sort()
    return chosen


def _mask(text: str, spans: list[Span]) -> str:
    if not spans:
        return text
    parts = []
    pos = 0
    for s in spans:
        parts.append(text[pos : s.start])
        parts.append(_MASK * (s.end - s.start))
        pos = s.end
    parts.append(text[pos:])
    return "".join(parts)


# --------------------------------------------------------------------------------------------------
# Lexicons
# --------------------------------------------------------------------------------------------------

_DATA = "qorgau.kernel.data"


def _read_list(name: str) -> dict[str, list[str]]:
    """Read ``data/pii/<name>``: ``#`` comments, optional ``[section]`` lines, one entry a line."""
    text = resources.files(_DATA).joinpath("pii").joinpath(name).read_text("utf-8")
    sections: dict[str, list[str]] = {"": []}
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1]
            sections.setdefault(current, [])
            continue
        sections[current].append(line)
    return sections


_KK_CASES = [
    "ның",
    "нің",
    "дың",
    "дің",
    "тың",
    "тің",
    "ға",
    "ге",
    "қа",
    "ке",
    "на",
    "не",
    "а",
    "е",
    "ны",
    "ні",
    "ды",
    "ді",
    "ты",
    "ті",
    "н",
    "да",
    "де",
    "та",
    "те",
    "нда",
    "нде",
    "дан",
    "ден",
    "тан",
    "тен",
    "нан",
    "нен",
    "мен",
    "бен",
    "пен",
    "ға",
    "ге",
]
_KK_CASE_RE = "|".join(sorted(set(_KK_CASES), key=len, reverse=True))
_FLEETING = {"павел": "павл", "лев": "льв", "пётр": "петр", "петр": "петр"}
_RU_LATIN = {
    "а": ("a",),
    "б": ("b",),
    "в": ("v",),
    "г": ("g",),
    "ғ": ("g", "gh"),
    "д": ("d",),
    "е": ("e",),
    "ё": ("yo", "e"),
    "ж": ("zh",),
    "з": ("z",),
    "и": ("i",),
    "й": ("y", "i"),
    "к": ("k",),
    "қ": ("k", "q"),
    "л": ("l",),
    "м": ("m",),
    "н": ("n",),
    "ң": ("n", "ng"),
    "о": ("o",),
    "ө": ("o",),
    "п": ("p",),
    "р": ("r",),
    "с": ("s",),
    "т": ("t",),
    "у": ("u",),
    "ұ": ("u",),
    "ү": ("u",),
    "ф": ("f",),
    "х": ("kh", "h"),
    "һ": ("h",),
    "ц": ("ts",),
    "ч": ("ch",),
    "ш": ("sh",),
    "щ": ("shch",),
    "ъ": ("",),
    "ы": ("y",),
    "і": ("i",),
    "ь": ("",),
    "э": ("e",),
    "ю": ("yu",),
    "я": ("ya",),
    "ә": ("a", "ae"),
}
_KK_TO_RU = str.maketrans("әғқңөұүһі", "агкноуухи")


def _ru_forms(base: str) -> set[str]:
    """Russian case forms of a given name (lower case), generously over-generated."""
    forms = {base}
    if base.endswith("ия"):
        stem = base[:-1]
        forms.update(stem + e for e in ("и", "ю", "ей", "ею"))
    elif base.endswith(("а", "я")):
        stem = base[:-1]
        ends = ("ы", "и", "е", "у", "ой", "ою", "ей") if base.endswith("а") else ("и", "е", "ю", "ей", "ёй", "ею")
        forms.update(stem + e for e in ends)
    elif base.endswith(("й", "ь")):
        stem = base[:-1]
        forms.update(stem + e for e in ("я", "ю", "ем", "е", "ём", "и", "ью"))
    elif base[-1] in "бвгджзклмнпрстфхцчшщғқңһ":
        stem = _FLEETING.get(base, base)
        forms.update(stem + e for e in ("а", "у", "ом", "е", "ым", "ем"))
    return forms


def _russian_spellings(base: str) -> set[str]:
    """Russian spellings of a Kazakh name: Гүлнар → Гульнар, Әсел → Асель, Айгүл → Айгуль."""
    out = set()
    soft = re.sub(r"([үеі])л(?=$|[бвгджзклмнпрстфхцчшщғқң])", r"\1ль", base)
    if soft != base:
        out.add(soft.translate(_KK_TO_RU))
    return out


def _kk_forms(base: str) -> set[str]:
    return {base + suffix for suffix in _KK_CASES}


def _latin_variants(word: str, limit: int = 16) -> set[str]:
    """Latin spellings of a Cyrillic name (passport-style and common informal variants)."""
    w = word.lower()
    w = re.sub(r"ий$", "\x01", w)
    w = w.replace("ия", "\x02").replace("ья", "\x03")
    options: list[tuple[str, ...]] = []
    for i, ch in enumerate(w):
        if ch == "\x01":
            options.append(("iy", "y", "ii"))
        elif ch == "\x02":
            options.append(("iya", "ia"))
        elif ch == "\x03":
            options.append(("ya", "ia"))
        elif ch == "е" and i == 0:
            options.append(("e", "ye"))
        elif ch in _RU_LATIN:
            options.append(_RU_LATIN[ch])
        elif "a" <= ch <= "z" or ch in "-'":
            options.append((ch,))
        else:
            return set()
    out: set[str] = set()
    for combo in itertools.product(*options):
        out.add("".join(combo))
        if len(out) >= limit:
            break
    return out


@dataclass(frozen=True, slots=True)
class _Lexicon:
    given: dict[str, int]  # lower-case form -> ambiguity: 0 strong, 1 weak, 2 strict
    surnames: frozenset[str]
    stop: frozenset[str]
    titles: frozenset[str]


@lru_cache(maxsize=1)
def _lexicon() -> _Lexicon:
    amb = _read_list("ambiguous.txt")
    weak = {w.lower() for w in amb.get("weak", [])}
    strict = {w.lower() for w in amb.get("strict", [])}
    given: dict[str, int] = {}

    def add(form: str, level: int) -> None:
        if form not in given or given[form] > level:
            given[form] = level

    cyrillic = [w.lower() for w in _read_list("names_kk.txt")[""] + _read_list("names_ru.txt")[""]]
    for base in cyrillic:
        level = 2 if base in strict else 1 if base in weak else 0
        variants = {base, base.translate(_KK_TO_RU)} | _russian_spellings(base)
        for v in variants:
            for form in _ru_forms(v) | _kk_forms(v):
                add(form, level)
            for latin in _latin_variants(v):
                lat_level = 2 if latin in strict else 1 if (latin in weak or level) else 0
                add(latin, lat_level)
    for name in _read_list("names_en.txt")[""]:
        base = name.lower()
        add(base, 2 if base in strict else 1 if base in weak else 0)
    for word in strict:
        given[word] = 2
    stop_words = set()
    for word in _read_list("stopwords.txt")[""]:
        w = word.lower()
        stop_words.add(w)
        if re.fullmatch(f"[{_CYR_LO}]+", w) and len(w) > 3:
            stop_words.update(_ru_forms(w))
    cities = {c.lower() for c in _read_list("cities.txt")[""]}
    stop_words.update(c for c in cities if not _SURNAME_STRONG.match(c))
    context = _read_list("context.txt")
    titles = {t.lower().rstrip(".") for t in context["title"]}
    stop_words.update(titles)
    for form in list(given):
        if form in stop_words and given[form] == 0:
            given[form] = 1
    surnames = {s.lower() for s in _read_list("surnames.txt")[""]}
    return _Lexicon(given=given, surnames=frozenset(surnames), stop=frozenset(stop_words), titles=frozenset(titles))


# --------------------------------------------------------------------------------------------------
# PERSON
# --------------------------------------------------------------------------------------------------

_SURNAME_STRONG = re.compile(
    rf"[{_CYR_LO}]{{2,}}(?:ов|ев|ёв|ин)(?:а|у|ым|е|ой|ою|ы|ых|ыми)?(?:{_KK_CASE_RE})?"
    rf"|[{_CYR_LO}]{{2,}}(?:ұлы|улы|қызы|кызы)(?:ның|на|н|мен|нан|нда|ны)?"
    rf"|[{_CYR_LO}]{{2,}}(?:ович|евич|ьич|ич)(?:а|у|ем|е|ом)?(?:{_KK_CASE_RE})?"
    rf"|[{_CYR_LO}]{{2,}}(?:овна|евна|ична)(?:ы|е|у|ой)?(?:{_KK_CASE_RE})?"
    r"|[a-z]{2,}(?:ov|ova|ev|eva|yev|yeva|uly|uli|kyzy|qyzy|kizi|ovich|evich|ovna|evna)"
)
_SURNAME_WEAK = re.compile(
    rf"[{_CYR_LO}]{{2,}}(?:ск|цк)(?:ий|ого|ому|им|ом|ая|ой|ую|ою|ие|их|ими)"
    rf"|[{_CYR_LO}]{{3,}}(?:енко|швили|дзе|ян)"
    r"|[a-z]{3,}(?:in|ina|sky|skiy|skaya|enko|yan)"
)
_POSSESSIVE_BUSINESS = re.compile(r"[ \t]+[A-Z]")
_LATIN_WORD = re.compile(r"[A-Za-z'’\-]+")

# Token flags
_GIVEN = 1
_GIVEN_WEAK = 2
_GIVEN_STRICT = 4
_SUR_STRONG = 8
_SUR_WEAK = 16
_STOP = 32
_TITLE = 64
_LATIN = 128
_INITIAL = 256
_NAMEY = _GIVEN | _GIVEN_WEAK | _GIVEN_STRICT | _SUR_STRONG | _SUR_WEAK | _INITIAL
_STRONG = _GIVEN | _SUR_STRONG

_CAP_TOKEN = re.compile(
    rf"(?<![{_LO}{_UP}\d])(?:(?P<init>[{_UP}]\.(?:{_SP}?[{_UP}]\.(?![{_LO}{_UP}]))?)"
    rf"|(?P<word>[{_UP}][{_LO}{_UP}]*(?:[\-'’][{_UP}{_LO}]+)*))"
)


@lru_cache(maxsize=65536)
def _classify(word: str) -> int:
    lex = _lexicon()
    w = word.lower()
    flags = _LATIN if _LATIN_WORD.fullmatch(word) else 0
    if w in lex.titles:
        return flags | _TITLE | _STOP
    if w in lex.stop:
        return flags | _STOP
    level = lex.given.get(w)
    if level is not None:
        flags |= (_GIVEN, _GIVEN_WEAK, _GIVEN_STRICT)[level]
    parts = w.split("-")
    last = parts[-1]
    if len(w) > 1 and word[1:].isupper() and not flags & _LATIN and len(w) <= 4:
        return flags | _STOP  # abbreviations such as ТОО, ИИН, МВД
    if len(w) > 2 and word[:2].isupper() and not word.isupper():
        return flags | _STOP  # an abbreviation with a case ending: ЦОНа, ДПСник
    if all(_SURNAME_STRONG.fullmatch(p) for p in parts if p) and len(w) >= 5:
        flags |= _SUR_STRONG
    elif _SURNAME_WEAK.fullmatch(last) or w in lex.surnames or last in lex.surnames:
        flags |= _SUR_WEAK
    return flags


@dataclass(frozen=True, slots=True)
class _Tok:
    start: int
    end: int
    flags: int


def _is_sentence_start(text: str, pos: int) -> bool:
    i = pos - 1
    while i >= 0 and text[i] in " \t\u00a0«\"“„'(-—–":
        i -= 1
    return i < 0 or text[i] in ".!?\n\r…"


@dataclass(frozen=True, slots=True)
class _Engine:
    pre_neg: re.Pattern[str]
    post_neg: re.Pattern[str]
    title_before: re.Pattern[str]
    title_after: re.Pattern[str]
    honorific_before: re.Pattern[str]
    quote_before: re.Pattern[str]
    kk_pat_after: re.Pattern[str]
    anchor: re.Pattern[str]
    anchors: tuple[re.Pattern[str], ...]
    hint: re.Pattern[str]
    area_name_before: re.Pattern[str]
    house: re.Pattern[str]
    house_before: re.Pattern[str]
    extra: re.Pattern[str]
    flat: re.Pattern[str]
    flat_before: re.Pattern[str]
    city_last: re.Pattern[str]
    postal_last: re.Pattern[str]
    left_part: re.Pattern[str]
    street_kw_after: re.Pattern[str]
    house_first: re.Pattern[str]


def _trie(entries: Iterable[tuple[str, str]], after_first: str = "") -> str:
    """One regex for many literal words, factored as a trie (much faster than a flat alternation).

    ``entries`` are ``(word, tail)`` pairs; ``tail`` is a regex appended after the word (e.g. a
    word-boundary lookahead); ``after_first`` is inserted after each word's first character (a
    lookbehind placed there keeps the pattern's fast first-character scan). Longer words are tried
    first; a space in a word matches any spacing.
    """
    root: dict = {}
    for word, tail in entries:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node.setdefault(None, set()).add(tail)

    def emit(node: dict, depth: int) -> str:
        alts = []
        for ch in sorted(k for k in node if k is not None):
            head = r"\s+" if ch == " " else re.escape(ch)
            alts.append(head + (after_first if depth == 0 else "") + emit(node[ch], depth + 1))
        if None in node:
            tails = node[None]
            alts.append("" if "" in tails else sorted(tails)[0])
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    return emit(root, 0)


def _alt(words: Iterable[str]) -> str:
    """A case-sensitive alternation of literal words, longest first."""
    return _trie((w.strip(), "") for w in words if w.strip())


def _kw(words: Iterable[str]) -> str:
    """A keyword alternation (lower, Capitalised or UPPER case) that does not start or end inside a word.

    An entry ending in ``*`` is a prefix: it may be followed by more letters. Case variants are
    spelled out rather than matched with ``(?i)``, which would disable the fast first-character scan.
    """
    entries = []
    for raw in words:
        w = raw.strip().lower()
        if not w:
            continue
        prefix = w.endswith("*")
        w = w.rstrip("*")
        tail = _NOT_LETTER_AFTER if w[-1].isalnum() and not prefix else ""
        for variant in {w, w[0].upper() + w[1:], w.upper()}:
            entries.append((variant, tail))
    return _trie(entries, after_first=r"(?<![^\W\d_].)")


@lru_cache(maxsize=1)
def _engine() -> _Engine:
    ctx = _read_list("context.txt")
    adr = _read_list("address.txt")
    cities = _read_list("cities.txt")[""]
    city = rf"(?:{_alt(cities)}){_NOT_LETTER_AFTER}"
    nameword = rf"[{_UP}](?<![{_LO}{_UP}\d].)[{_LO}{_UP}'’]*(?:-[{_UP}{_LO}0-9][{_LO}{_UP}0-9]*)*"
    connect = r"(?:батыр|батыра|би|хан|хана|ата|жолы|жырау|ақын|акын|бабы|баба|ана)(?![^\W\d_])"
    ordinal = r"\d{1,3}(?:-?(?:я|й|ая|ый|ий|ой|го|ші|шы|th|st|nd|rd))?"
    street_name = rf"(?:{ordinal}{_SP}+)?{nameword}(?:{_SP}+(?:{nameword}|{connect})){{0,2}}"
    area_name = (
        rf"(?:{nameword}|\d{{1,3}}(?:-?[{_LO}]{{1,2}})?|[«\"“][^»\"”\n]{{1,30}}[»\"”])(?:-\d{{1,2}}[{_LO}{_UP}]?)?"
        rf"(?:{_SP}\d{{1,2}}(?={_SP}*,?{_SP}*(?i:д\.|д|дом|үй|house|bldg\.?|building){_NOT_LETTER_AFTER}))?"
    )
    street_before = _kw(adr["street_before"])
    street_after = _kw(adr["street_after"])
    area_before = _kw(adr["area_before"])
    area_after = _kw(adr["area_after"])
    house_kw = _kw(adr["house"])
    house_after = _kw(adr["house_after"])
    extra_kw = _kw(adr["house_extra"])
    flat_kw = _kw(adr["flat"])
    flat_after = _kw(adr["flat_after"])
    city_before = _kw(adr["city_before"])
    city_after = _kw(adr["city_after"])
    district_after = _kw(adr["district_after"])
    not_house = _kw(adr["not_house"])
    city_part = rf"(?:{city_before}{_SP}*{city}|{city})(?:{_SP}+{city_after})?"
    sep = rf"(?:{_SP}*,{_SP}*|{_SP}+)"
    number = rf"\d{{1,4}}(?:[{_LO}{_UP}](?![{_LO}{_UP}])|{_SP}[{_UP}](?![{_LO}{_UP}]))?"
    house_no = rf"{number}(?:{_SP}?[/\-]{_SP}?\d{{1,4}}(?:[{_LO}](?![{_LO}]))?)?"
    anchors = [
        rf"(?P<city>{city_part}){_SP}*,{_SP}*{nameword}(?:{_SP}+{connect})?(?={_SP}*,?{_SP}*\d)",
        rf"{street_before}{_SP}*{street_name}",
        rf"(?P<post>{nameword}(?:{_SP}+(?:{nameword}|{connect}))?){_SP}+{street_after}",
        rf"{area_before}{_SP}*{area_name}",
        # area name written before its keyword ("5 мкр.", "Самал-2 шағын ауданы"): found from the keyword
        rf"(?P<area_after>{area_after})",
        rf"{nameword}(?:{_SP}+{connect})?(?={_SP}+{house_no}{sep}{flat_kw})",
        rf"{nameword}{_SP}+{connect}(?={_SP}+{house_no})",
        rf"(?P<bare>[{_UP}](?:(?<=[Нн]а{_SP}.)|(?<=[Пп]о{_SP}.)){nameword[len(_UP) + 2 :]}(?:{_SP}+{connect})?)"
        rf"(?={_SP}+{house_no}(?:[,.;:!?)—–]|\Z|{_SP}+[{_CYR_LO}]))",
    ]
    anchor = "|".join(anchors)
    hint = (
        rf"{_kw(adr['street_before'] + adr['street_after'] + adr['area_before'] + adr['area_after'] + adr['flat'])}"
        rf"|{city}|{connect}|[{_UP}](?:(?<=[Нн]а{_SP}.)|(?<=[Пп]о{_SP}.))"
    )
    house = (
        rf"{sep}(?:{house_kw}{_SP}*№?{_SP}*)?{house_no}(?:{_SP}*-?{_SP}*{house_after})?"
        rf"(?!{_SP}*{not_house})(?![\d])"
    )
    return _Engine(
        pre_neg=re.compile(
            rf"{_kw(ctx['not_before'])}[ \t]*(?:№[ \t]*)?[«\"“„]?[ \t]*"
            rf"(?:[{_UP}][{_LO}]*[ \t]+(?:{connect}[ \t]+)?(?:и|мен|және|and|&|/)[ \t]*)?\Z"
        ),
        post_neg=re.compile(
            rf"[ \t]*[»\"”]?[ \t]*(?:(?:и|мен|және|and|&|/)[ \t]*[{_UP}][{_LO}]*[ \t]*)?"
            rf"(?:(?:батыр|би|хан|ата|жолы|жырау)[ \t]+)?{_kw(ctx['not_after'])}"
        ),
        title_before=re.compile(rf"{_kw(t.rstrip('.') for t in ctx['title'])}\.?[ \t]+\Z"),
        title_after=re.compile(rf"[ \t]+{_kw(ctx['title_after'])}"),
        honorific_before=re.compile(rf"{_kw(t.rstrip('.') for t in ctx['honorific'])}\.?[ \t]*(?:\Z|(?=[{_UP}]))"),
        quote_before=re.compile(r"[«\"“„][ \t]*\Z"),
        kk_pat_after=re.compile(r"[ \t]+(?:ұлы|улы|қызы|кызы)(?:ның|на|н|мен|нан|нда|ны)?(?![^\W\d_])"),
        anchor=re.compile(anchor),
        anchors=tuple(re.compile(a) for a in anchors),
        hint=re.compile(hint),
        area_name_before=re.compile(rf"{area_name}{_SP}*-?{_SP}*\Z"),
        house=re.compile(house),
        house_before=re.compile(rf"(?<![\w/\-]){number}(?:/\d{{1,4}})?{_SP}+\Z"),
        extra=re.compile(
            rf"{sep}(?:{extra_kw}{_SP}*\d{{1,3}}[{_LO}{_UP}]?(?![\w])"
            rf"|(?:БЦ|ТЦ|ТРЦ|ЖК|BC){_SP}*[«\"“][^»\"”\n]{{1,40}}[»\"”](?={sep}{flat_kw}))"
        ),
        flat=re.compile(
            rf"{sep}(?:{flat_kw}{_SP}*№?{_SP}*\d{{1,4}}[{_LO}]?(?![\w])|\d{{1,4}}{_SP}*-?{_SP}*{flat_after})"
        ),
        flat_before=re.compile(rf"{flat_kw}{_SP}*№?{_SP}*\d{{1,4}}[{_LO}]?{_SP}*,{_SP}*\Z"),
        city_last=re.compile(rf"{_SP}*,?{_SP}*{city_part}|{_SP}*,{_SP}*{city_before}{_SP}*{nameword}"),
        postal_last=re.compile(rf"{_SP}*,?{_SP}*\d{{6}}(?!\d)"),
        left_part=re.compile(
            rf"(?:\d{{6}}|{city_part}|{city_before}{_SP}*{nameword}"
            rf"|{nameword}(?:{_SP}+{nameword})?{_SP}+{district_after}|{_kw(['район', 'р-н'])}{_SP}+{nameword}"
            rf"|(?:Республика{_SP}+)?(?:Казахстан|Қазақстан|Kazakhstan)|{area_before}{_SP}*{area_name}"
            rf"|{area_name}{_SP}*-?{_SP}*{area_after}){_SP}*,?{_SP}*\Z"
        ),
        street_kw_after=re.compile(street_after),
        house_first=re.compile(rf"{house_kw}{_SP}*№?{_SP}*{house_no}{_SP}+(?:по|на){_SP}+\Z"),
    )


def _find_persons(text: str) -> list[Span]:
    eng = _engine()
    toks: list[_Tok] = []
    for m in _CAP_TOKEN.finditer(text):
        if m.group("init"):
            toks.append(_Tok(m.start(), m.end(), _INITIAL))
            continue
        word = m.group("word")
        end = m.end()
        flags = 0
        if word.endswith(("'s", "’s")) and len(word) > 3:
            word = word[:-2]
            end -= 2
            if _POSSESSIVE_BUSINESS.match(text, m.end()):
                flags = _STOP  # "Peter's Bakery": a shop named after a person
        toks.append(_Tok(m.start(), end, flags or _classify(word)))
    if not toks:
        return []
    spans: list[Span] = []
    # Group consecutive tokens (separated only by spaces or nothing after an initial).
    group: list[_Tok] = [toks[0]]
    for tok in toks[1:]:
        prev = group[-1]
        gap = text[prev.end : tok.start]
        joined = (gap == "" and prev.flags & _INITIAL) or (0 < len(gap) <= 2 and not gap.strip(" \t\u00a0"))
        if joined:
            group.append(tok)
        else:
            spans.extend(_persons_in_group(text, group, eng))
            group = [tok]
    spans.extend(_persons_in_group(text, group, eng))
    return spans


def _persons_in_group(text: str, group: list[_Tok], eng: _Engine) -> list[Span]:
    out: list[Span] = []
    window = max(0, group[0].start - 30)
    titled = bool(eng.title_before.search(text, window, group[0].start))
    honorific = titled and bool(eng.honorific_before.search(text, window, group[0].start))
    run: list[_Tok] = []
    for tok in [*group, None]:
        if tok is None or tok.flags & _STOP:
            if run:
                span = _accept_run(text, run, titled, honorific, eng)
                if span:
                    out.append(span)
            run = []
            titled = bool(tok and tok.flags & _TITLE)
            honorific = titled and bool(eng.honorific_before.match(text, tok.start))
            continue
        run.append(tok)
    return out


def _accept_run(text: str, run: list[_Tok], titled: bool, honorific: bool, eng: _Engine) -> Span | None:
    # Unknown capitalised words count only next to an initial, after a title, or (Latin) after a
    # given name; otherwise they cut the run and the longest acceptable piece is kept.
    pieces: list[list[_Tok]] = [[]]
    for i, tok in enumerate(run):
        if tok.flags & _NAMEY:
            pieces[-1].append(tok)
            continue
        prev_f = run[i - 1].flags if i else 0
        next_f = run[i + 1].flags if i + 1 < len(run) else 0
        latin_after_given = tok.flags & _LATIN and prev_f & (_GIVEN | _GIVEN_WEAK)
        by_surname = (prev_f | next_f) & _SUR_STRONG and not _is_sentence_start(text, tok.start)
        if (prev_f | next_f) & _INITIAL or (honorific and i == 0) or latin_after_given or by_surname:
            pieces[-1].append(tok)
        else:
            pieces.append([])
    best: Span | None = None
    for piece in pieces:
        span = _judge(text, piece, titled and piece is pieces[0], eng)
        if span and (best is None or span.end - span.start > best.end - best.start):
            best = span
    return best


def _judge(text: str, piece: list[_Tok], titled: bool, eng: _Engine) -> Span | None:
    while piece and piece[-1].flags & _INITIAL and len(piece) > 1 and piece[0].flags & _INITIAL:
        piece = piece[:-1]
    if not piece or len(piece) > 5:  # a name has at most five parts; longer runs are lists or titles
        return None
    flags = 0
    for tok in piece:
        flags |= tok.flags
    words = [t for t in piece if not t.flags & _INITIAL]
    if not words:
        return None
    start, end = piece[0].start, piece[-1].end
    honorific = bool(eng.title_after.match(text, end))
    ok = False
    if (
        flags & _STRONG
        or len(piece) >= 2
        or titled
        or honorific
        or (flags & _GIVEN_WEAK and not _is_sentence_start(text, start))
    ):
        ok = True
    if not ok:
        return None
    if eng.quote_before.search(text, max(0, start - 3), start):
        return None
    if eng.pre_neg.search(text, max(0, start - 40), start) or eng.post_neg.match(text, end):
        return None
    m = eng.kk_pat_after.match(text, end)
    if m:
        end = m.end()
    return Span(start, end, "PERSON")


# --------------------------------------------------------------------------------------------------
# ADDRESS
# --------------------------------------------------------------------------------------------------


def _find_addresses(text: str) -> list[Span]:
    eng = _engine()
    if not eng.hint.search(text):
        return []
    spans: list[Span] = []
    pos = 0
    found = []
    for k, pattern in enumerate(eng.anchors):
        for m in pattern.finditer(text):
            start = m.start()
            if m.groupdict().get("area_after") is not None:
                before = eng.area_name_before.search(text, max(0, start - 40), start)
                if not before:
                    continue
                start = before.start()
            found.append((start, k, m))
    found.sort(key=lambda item: (item[0], item[1]))
    for start, _, m in found:
        end = m.end()
        groups = m.groupdict()
        if start < pos:
            continue
        post = groups.get("post")
        if post and " " in post.strip():
            first, second = post.split(None, 1)
            f1, f2 = _classify(first), _classify(second.split()[0])
            cyrillic = not f1 & _LATIN
            if cyrillic and f1 & (_NAMEY | _STOP) and not f2 & (_SUR_STRONG | _SUR_WEAK) and second[0].isupper():
                start = m.start("post") + post.index(second, len(first))
        # A second street-level part: "мкр. Самал-2, ул. Жолдасбекова 9".
        nxt = eng.anchor.match(text, end + len(text[end:]) - len(text[end:].lstrip(" ,\t")))
        if nxt and text[end : nxt.start()].strip(" \t") in ("", ",") and not nxt.group("city"):
            end = nxt.end()
        bare = groups.get("bare")
        if bare and not (
            re.search(r"(?:а|я|ого|его)$|\s", bare) or (eng.house.match(text, end) and text[end + 1 : end + 2] == ",")
        ):
            continue
        has_house = False
        h = eng.house.match(text, end)
        if h:
            end = h.end()
            has_house = True
        elif hf := eng.house_first.search(text, max(0, start - 25), start):
            start = hf.start()
            has_house = True
        elif post and eng.street_kw_after.search(m.group()):
            hb = eng.house_before.search(text, max(0, start - 12), start)
            if hb:
                start = hb.start()
                has_house = True
                fb = eng.flat_before.search(text, max(0, start - 20), start)
                if fb:
                    start = fb.start()
        if not has_house:
            continue
        x = eng.extra.match(text, end)
        if x:
            end = x.end()
        f = eng.flat.match(text, end)
        if f:
            end = f.end()
        c = eng.city_last.match(text, end)
        if c:
            end = c.end()
        p = eng.postal_last.match(text, end)
        if p:
            end = p.end()
        for _ in range(5):
            left = eng.left_part.search(text, max(0, start - 60), start)
            if not left or left.start() == start:
                break
            start = left.start()
        while text[end - 1] in " ,\t":
            end -= 1
        spans.append(Span(start, end, "ADDRESS"))
        pos = end
    return spans


# --------------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------------


def find_pii(text: str) -> list[Span]:
    """Find personal data in ``text``: sorted, non-overlapping :class:`Span` objects.

    Labels are those of :data:`LABELS`; offsets are Python string indices (end exclusive). Typed
    identifiers win over addresses, addresses over persons (a street named after a person is part
    of the ADDRESS); see the module docstring and ``DOMAIN.md`` for the span conventions.
    """
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    if not text:
        return []
    typed = _resolve(_find_typed(text, date.today()), _PRIORITY)
    masked = _mask(text, typed)
    addresses = _find_addresses(masked) if _DIGIT.search(masked) else []
    if addresses:
        masked = _mask(masked, addresses)
    persons = _find_persons(masked)
    return sorted(typed + addresses + persons)


def redact(text: str, spans: Iterable[Span] | None = None) -> str:
    """Return ``text`` with each span (default: :func:`find_pii`) replaced by ``[LABEL]``.

    Spans must not overlap; they may be given in any order.
    """
    chosen = sorted(find_pii(text) if spans is None else spans)
    parts = []
    pos = 0
    for span in chosen:
        if span.start < pos:
            raise ValueError("spans overlap")
        parts.append(text[pos : span.start])
        parts.append(f"[{span.label}]")
        pos = span.end
    parts.append(text[pos:])
    return "".join(parts)


def _read_jsonl(inp: TextIO) -> Iterable[tuple[int, str]]:
    for line_no, line in enumerate(inp, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise PiiInputError(line_no, f"not valid JSON ({exc.msg})") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
            raise PiiInputError(line_no, 'expected an object with a string "text"')
        yield line_no, obj["text"]


def scan_stream(inp: TextIO, out: TextIO) -> int:
    """``qorgau pii scan``: for each JSON line ``{"text": ...}`` write ``{"spans": [...]}``.

    Each span is ``{"start": S, "end": E, "label": L}`` with Python string offsets. Blank lines are
    skipped; a malformed line raises :class:`PiiInputError` (lines before it are already written).
    Returns the number of lines scanned.
    """
    count = 0
    for _, text in _read_jsonl(inp):
        spans = [{"start": s.start, "end": s.end, "label": s.label} for s in find_pii(text)]
        out.write(json.dumps({"spans": spans}, ensure_ascii=False) + "\n")
        count += 1
    out.flush()
    return count


def redact_stream(inp: TextIO, out: TextIO) -> int:
    """``qorgau pii redact``: for each JSON line ``{"text": ...}`` write ``{"text": redacted}``.

    Same input rules as :func:`scan_stream`. Returns the number of lines redacted.
    """
    count = 0
    for _, text in _read_jsonl(inp):
        out.write(json.dumps({"text": redact(text)}, ensure_ascii=False) + "\n")
        count += 1
    out.flush()
    return count
