"""Official letters (correspondence between agencies): the rules, without storage.

A letter is registered by the sending agency under a number unique per agency and year
(``УЦА-2026/000123``: the agency's prefix, the year, a six-digit serial). Each addressee agency
follows the letter through registered → delivered → read → answered; a letter whose due date has
passed without an answer is overdue. States only move forward: a letter read once stays read.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from qorgau.kernel.i18n import DISPLAY_TIME_ZONE, N_

SUBJECT_MAX = 300
BODY_MAX = 20_000
MAX_ATTACHMENTS = 5
MAX_ADDRESSEES = 20
NUMBER_DIGITS = 6
PREFIX_MAX = 6


class LetterState(StrEnum):
    REGISTERED = "registered"
    DELIVERED = "delivered"
    READ = "read"
    ANSWERED = "answered"


ORDER = [LetterState.REGISTERED, LetterState.DELIVERED, LetterState.READ, LetterState.ANSWERED]

STATE_LABELS: dict[str, str] = {
    LetterState.REGISTERED: N_("Registered"),
    LetterState.DELIVERED: N_("Delivered"),
    LetterState.READ: N_("Read"),
    LetterState.ANSWERED: N_("Answered"),
    "overdue": N_("Overdue"),
}


def advances(current: str, new: LetterState) -> bool:
    """Whether moving an addressee from `current` to `new` is a step forward (never back)."""
    return ORDER.index(LetterState(current)) < ORDER.index(new)


# Words that do not give a letter to an agency's prefix ("of the city of", "and", "for"...).
_SKIP = {"и", "по", "для", "при", "на", "в", "г", "города", "города.", "of", "the", "and", "for", "city"}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def registration_prefix(agency_name: str, fallback: str) -> str:
    """The letters an agency's numbers start with: the initials of its name (``УЦА``).

    Agencies keep the prefix they got with their first letter of a year (it is stored with the
    register), so renaming an agency never changes numbers already issued.
    """
    initials = [w[0].upper() for w in _WORD.findall(agency_name) if w.lower() not in _SKIP and len(w) > 1]
    prefix = "".join(initials)[:PREFIX_MAX]
    if len(prefix) >= 2:
        return prefix
    cleaned = re.sub(r"[^A-Za-z0-9]", "", fallback).upper()
    return (cleaned or "AG")[:PREFIX_MAX]


def format_number(prefix: str, year: int, number: int) -> str:
    """The registration number as people write and quote it: ``PREFIX-YYYY/NNNNNN``."""
    return f"{prefix}-{year}/{number:0{NUMBER_DIGITS}d}"


def registration_year(now_ms: int) -> int:
    """Numbering restarts each calendar year in Kazakhstan's time, not UTC's."""
    return datetime.fromtimestamp(now_ms / 1000, tz=ZoneInfo(DISPLAY_TIME_ZONE)).year


def due_at_ms(due: date) -> int:
    """A due date means "by the end of that day" in Kazakhstan's time."""
    end = datetime.combine(due + timedelta(days=1), time.min, tzinfo=ZoneInfo(DISPLAY_TIME_ZONE))
    return int(end.timestamp() * 1000) - 1


def today(now_ms: int) -> date:
    return datetime.fromtimestamp(now_ms / 1000, tz=ZoneInfo(DISPLAY_TIME_ZONE)).date()


def is_overdue(due_at: int | None, state: str, now_ms: int) -> bool:
    """An addressee is overdue when the due date has passed and it has not answered."""
    return due_at is not None and state != LetterState.ANSWERED and now_ms > due_at


def reply_subject(subject: str) -> str:
    """The subject of an answer: the original's, marked once (no "Re: Re: ...")."""
    bare = re.sub(r"^(?:(?:re|на|жауап)\s*:\s*)+", "", subject.strip(), flags=re.IGNORECASE)
    return ("Re: " + bare)[:SUBJECT_MAX]
