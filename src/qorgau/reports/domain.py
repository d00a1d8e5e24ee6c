"""The verification regulation for citizen reports, as a pure state machine.

A report moves new → triaged → in_verification → confirmed | not_confirmed | knowingly_false → closed.
Besides, a unit may merge it into an earlier report of the same incident (merged_duplicate) or forward
it to the competent unit (forwarded, which that unit triages like a new report), and the reporter may
withdraw it until it is triaged (withdrawn).

Every step names who may take it, the reasons it may be taken for, and whether a note is required; the
deadlines (triage within a day, a decision within ten, from settings) make a report overdue. No I/O
here: the service layer checks who the actor is, applies :func:`decide`, and writes the result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from qorgau.kernel.i18n import N_

DAY_MS = 24 * 60 * 60 * 1000
NOTE_MAX_LENGTH = 2000


class Status(StrEnum):
    NEW = "new"
    TRIAGED = "triaged"
    IN_VERIFICATION = "in_verification"
    CONFIRMED = "confirmed"
    NOT_CONFIRMED = "not_confirmed"
    KNOWINGLY_FALSE = "knowingly_false"
    CLOSED = "closed"
    MERGED_DUPLICATE = "merged_duplicate"
    FORWARDED = "forwarded"
    WITHDRAWN = "withdrawn"


STATUS_LABELS: dict[Status, str] = {
    Status.NEW: N_("Received"),
    Status.TRIAGED: N_("Accepted for review"),
    Status.IN_VERIFICATION: N_("Being verified"),
    Status.CONFIRMED: N_("Confirmed"),
    Status.NOT_CONFIRMED: N_("Not confirmed"),
    Status.KNOWINGLY_FALSE: N_("Found knowingly false"),
    Status.CLOSED: N_("Closed"),
    Status.MERGED_DUPLICATE: N_("Merged with an earlier report"),
    Status.FORWARDED: N_("Forwarded to the competent unit"),
    Status.WITHDRAWN: N_("Withdrawn by the reporter"),
}

# Where no one acts any more: the report is no longer in any unit's work queue.
FINAL = frozenset({Status.CLOSED, Status.MERGED_DUPLICATE, Status.WITHDRAWN})
# Waiting for triage (a forwarded report is new to the unit that receives it).
AWAITING_TRIAGE = frozenset({Status.NEW, Status.FORWARDED})
# A decision on the facts has been taken; only closing remains.
DECIDED = frozenset({Status.CONFIRMED, Status.NOT_CONFIRMED, Status.KNOWINGLY_FALSE})


class Action(StrEnum):
    TRIAGE = "triage"
    START_VERIFICATION = "start_verification"
    CONFIRM = "confirm"
    NOT_CONFIRM = "not_confirm"
    MARK_KNOWINGLY_FALSE = "mark_knowingly_false"
    CLOSE = "close"
    MERGE_DUPLICATE = "merge_duplicate"
    FORWARD = "forward"
    WITHDRAW = "withdraw"


class WorkflowRole(StrEnum):
    """Who acts on a report, as the regulation sees them (the service maps accounts to these)."""

    REPORTER = "reporter"  # whoever holds the receipt, or the named reporter's account
    OFFICER = "officer"  # a police officer of the responsible unit
    SUPERVISOR = "supervisor"  # the head of the responsible unit (its agency administrator)


@dataclass(frozen=True)
class Reason:
    code: str
    label: str


@dataclass(frozen=True)
class Step:
    """One transition of the regulation."""

    action: Action
    label: str
    sources: frozenset[Status]
    target: Status
    roles: frozenset[WorkflowRole]
    reasons: tuple[Reason, ...]
    note_required: bool = True
    # What else the step needs: "unit" (forward: the receiving unit), "duplicate" (the earlier report).
    needs: str | None = None

    def reason(self, code: str) -> Reason | None:
        return next((r for r in self.reasons if r.code == code), None)


STAFF = frozenset({WorkflowRole.OFFICER, WorkflowRole.SUPERVISOR})
SUPERVISOR_ONLY = frozenset({WorkflowRole.SUPERVISOR})
OPEN_FOR_REVIEW = frozenset({Status.NEW, Status.FORWARDED, Status.TRIAGED, Status.IN_VERIFICATION})

STEPS: dict[Action, Step] = {
    s.action: s
    for s in (
        Step(
            Action.TRIAGE,
            N_("Accept for review"),
            AWAITING_TRIAGE,
            Status.TRIAGED,
            STAFF,
            (
                Reason("within_competence", N_("Within the unit's competence")),
                Reason("urgent", N_("Urgent: a risk to people")),
                Reason("needs_details", N_("Accepted; details are needed from the reporter")),
            ),
        ),
        Step(
            Action.START_VERIFICATION,
            N_("Start verification"),
            frozenset({Status.TRIAGED}),
            Status.IN_VERIFICATION,
            STAFF,
            (
                Reason("site_visit", N_("A patrol checks on the spot")),
                Reason("records_check", N_("Check of cameras and records")),
                Reason("interviews", N_("Interviews with witnesses and persons involved")),
            ),
        ),
        Step(
            Action.CONFIRM,
            N_("Confirm the offence"),
            frozenset({Status.IN_VERIFICATION}),
            Status.CONFIRMED,
            STAFF,
            (
                Reason("protocol", N_("An administrative offence report was drawn up")),
                Reason("warning", N_("The offender was warned")),
                Reason("criminal_case", N_("Handed over for a criminal investigation")),
            ),
        ),
        Step(
            Action.NOT_CONFIRM,
            N_("Offence not confirmed"),
            frozenset({Status.IN_VERIFICATION}),
            Status.NOT_CONFIRMED,
            STAFF,
            (
                Reason("no_evidence", N_("No evidence of an offence was found")),
                Reason("not_an_offence", N_("What was described is not an offence")),
                Reason("offender_not_identified", N_("The offender could not be identified")),
            ),
        ),
        # Calling a citizen's report knowingly false opens the way to unseal a named reporter: the head
        # of the unit takes that decision, not the officer alone.
        Step(
            Action.MARK_KNOWINGLY_FALSE,
            N_("Find knowingly false"),
            frozenset({Status.IN_VERIFICATION}),
            Status.KNOWINGLY_FALSE,
            SUPERVISOR_ONLY,
            (
                Reason("fabricated", N_("The events described did not happen")),
                Reason("defamatory", N_("Made to harm a named person")),
            ),
        ),
        Step(
            Action.CLOSE,
            N_("Close"),
            DECIDED,
            Status.CLOSED,
            STAFF,
            (
                Reason("measures_taken", N_("Measures were taken")),
                Reason("no_further_action", N_("No further action is needed")),
                Reason("referred", N_("Referred to another procedure")),
            ),
        ),
        Step(
            Action.MERGE_DUPLICATE,
            N_("Merge with an earlier report"),
            OPEN_FOR_REVIEW,
            Status.MERGED_DUPLICATE,
            STAFF,
            (Reason("same_incident", N_("The same incident was already reported")),),
            needs="duplicate",
        ),
        Step(
            Action.FORWARD,
            N_("Forward to another unit"),
            OPEN_FOR_REVIEW,
            Status.FORWARDED,
            STAFF,
            (
                Reason("other_territory", N_("The place is in another unit's territory")),
                Reason("other_competence", N_("Another unit is competent")),
            ),
            needs="unit",
        ),
        Step(
            Action.WITHDRAW,
            N_("Withdraw the report"),
            frozenset({Status.NEW}),
            Status.WITHDRAWN,
            frozenset({WorkflowRole.REPORTER}),
            (
                Reason("resolved", N_("The problem has been resolved")),
                Reason("mistake", N_("Sent by mistake")),
                Reason("changed_mind", N_("I no longer wish to report it")),
            ),
            note_required=False,
        ),
    )
}


class WorkflowError(ValueError):
    """A step the regulation does not allow; `code` is the problem code, `field` the input at fault."""

    def __init__(self, code: str, field: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.field = field


@dataclass(frozen=True)
class Decision:
    """What a legal step does: the new status, and the reason and note it was taken with."""

    step: Step
    reason: Reason
    note: str

    @property
    def target(self) -> Status:
        return self.step.target


def decide(status: Status, action: Action | str, role: WorkflowRole, reason: str, note: str) -> Decision:
    """Check one step of the regulation; raise :class:`WorkflowError` if it is not allowed.

    Checked in this order: the action exists (``reports.unknown_action``), the role may take it
    (``auth.forbidden``), the report's status allows it (``reports.illegal_transition``), the reason is
    one of the step's (``reports.unknown_reason``), and a note is given where required
    (``reports.note_required``) and not too long (``validation.field``).
    """
    try:
        step = STEPS[Action(action)]
    except ValueError:
        raise WorkflowError("reports.unknown_action", "action") from None
    if role not in step.roles:
        raise WorkflowError("auth.forbidden")
    if status not in step.sources:
        raise WorkflowError("reports.illegal_transition")
    chosen = step.reason(reason)
    if chosen is None:
        raise WorkflowError("reports.unknown_reason", "reason")
    note = note.strip()
    if step.note_required and not note:
        raise WorkflowError("reports.note_required", "note")
    if len(note) > NOTE_MAX_LENGTH:
        raise WorkflowError("validation.field", "note")
    return Decision(step, chosen, note)


def available_steps(status: Status, role: WorkflowRole) -> list[Step]:
    """The steps `role` may take on a report in `status`, in the regulation's order."""
    return [s for s in STEPS.values() if status in s.sources and role in s.roles]


def legal_pairs() -> Iterable[tuple[Status, Action]]:
    """Every (status, action) the regulation allows, whoever takes it."""
    for step in STEPS.values():
        for source in step.sources:
            yield source, step.action


# --- deadlines ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deadlines:
    """How long a unit has: to triage a report it receives, and to decide on a report it triaged."""

    triage_ms: int
    decision_ms: int

    @classmethod
    def in_days(cls, triage_days: int, decision_days: int) -> Deadlines:
        return cls(triage_days * DAY_MS, decision_days * DAY_MS)


def due_after(target: Status, now_ms: int, current_due: int | None, deadlines: Deadlines) -> int | None:
    """The deadline of a report that has just entered `target` at `now_ms`.

    Received (new or forwarded): triage is due. Triaged: the decision is due, and verifying does not
    move that deadline. Decided or final: nothing is due (closing has no deadline of its own).
    """
    if target in AWAITING_TRIAGE:
        return now_ms + deadlines.triage_ms
    if target == Status.TRIAGED:
        return now_ms + deadlines.decision_ms
    if target == Status.IN_VERIFICATION:
        return current_due
    return None


def is_overdue(due_at: int | None, now_ms: int) -> bool:
    return due_at is not None and now_ms > due_at


def reporter_may_write(status: Status) -> bool:
    """A reporter may answer and add files while the report is still being worked on."""
    return status not in FINAL


# --- what a report may contain ----------------------------------------------------------------

DESCRIPTION_MIN = 10
DESCRIPTION_MAX = 4000  # Open311's limit for `description`
ADDRESS_MAX = 300
MESSAGE_MAX = 4000
# Kazakhstan's bounding box, with a margin: a point outside it is a typo, not a place we serve.
LAT_RANGE = (40.0, 56.0)
LONG_RANGE = (46.0, 88.0)


def point_in_country(lat: float, long: float) -> bool:
    return LAT_RANGE[0] <= lat <= LAT_RANGE[1] and LONG_RANGE[0] <= long <= LONG_RANGE[1]


# --- public statistics: small counts and their complements -------------------------------------

SMALL_COUNT = 10  # a count below this (and above zero) is shown as "<10"


class Hidden(StrEnum):
    """Why a published count is hidden."""

    SMALL = "small"  # 1..9: shown as "<10"
    COMPLEMENT = "complement"  # hidden so that a small count cannot be worked out by subtraction


@dataclass(frozen=True)
class Protected:
    """A table of counts with its row and column totals, each value either shown or hidden.

    ``cells[i][j]``, ``row_totals[i]``, ``col_totals[j]`` and ``total`` hold the count, or ``None``
    where hidden; ``hidden`` says why for every hidden position, keyed ``(i, j)`` with ``j == len(cols)``
    for a row total, ``i == len(rows)`` for a column total and ``(len(rows), len(cols))`` for the total.
    """

    cells: list[list[int | None]]
    row_totals: list[int | None]
    col_totals: list[int | None]
    total: int | None
    hidden: dict[tuple[int, int], Hidden]


def _bridges(edges: set[tuple[int, int]], n_rows: int) -> list[tuple[int, int]]:
    """The hidden positions that lie on no cycle of the bipartite graph rows × columns (Tarjan; sorted)."""
    adjacency: dict[int, list[tuple[int, tuple[int, int]]]] = {}
    for i, j in edges:
        adjacency.setdefault(i, []).append((n_rows + j, (i, j)))
        adjacency.setdefault(n_rows + j, []).append((i, (i, j)))
    order: dict[int, int] = {}
    low: dict[int, int] = {}
    found: list[tuple[int, int]] = []

    def visit(node: int, via: tuple[int, int] | None) -> None:
        order[node] = low[node] = len(order)
        for nxt, edge in adjacency[node]:
            if edge == via:
                continue
            if nxt in order:
                low[node] = min(low[node], order[nxt])
            else:
                visit(nxt, edge)
                low[node] = min(low[node], low[nxt])
                if low[nxt] > order[node]:
                    found.append(edge)

    for node in sorted(adjacency):
        if node not in order:
            visit(node, None)
    return sorted(found)


def protect_counts(cells: list[list[int]], *, force: Iterable[tuple[int, int]] = ()) -> Protected:
    """Hide small counts, and enough other counts that no hidden one follows from the rest.

    The table is extended with its totals: row totals as a last column, column totals as a last row and
    the grand total in the corner. Each row and column of that extended table is one linear equation
    (the cells add up to the total). A hidden value can be worked out by subtraction exactly when it is a
    bridge of the bipartite graph whose edges are the hidden positions (rows and columns as nodes):
    values on a cycle can be shifted by +k/−k around it without changing any shown number. So: hide
    every count from 1 to 9 (and ``force``, positions hidden in a linked table), then, while any hidden
    value is a bridge, close the rectangle through it that hides the least (by the sum of the values
    newly hidden). Zeros stay shown.
    """
    n_rows = len(cells)
    n_cols = len(cells[0]) if cells else 0
    if n_rows == 0 or n_cols == 0 or any(len(row) != n_cols for row in cells):
        raise ValueError("a non-empty rectangular table is needed")
    if any(v < 0 for row in cells for v in row):
        raise ValueError("counts are never negative")
    row_totals = [sum(row) for row in cells]
    col_totals = [sum(cells[i][j] for i in range(n_rows)) for j in range(n_cols)]
    total = sum(row_totals)

    def value(i: int, j: int) -> int:
        if i < n_rows and j < n_cols:
            return cells[i][j]
        if j == n_cols and i < n_rows:
            return row_totals[i]
        if i == n_rows and j < n_cols:
            return col_totals[j]
        return total

    positions = [(i, j) for i in range(n_rows + 1) for j in range(n_cols + 1)]
    hidden: dict[tuple[int, int], Hidden] = {p: Hidden.SMALL for p in positions if 0 < value(*p) < SMALL_COUNT}
    for p in force:
        if p not in hidden and p in set(positions):
            hidden[p] = Hidden.COMPLEMENT
    while True:
        bridges = _bridges(set(hidden), n_rows + 1)
        if not bridges:
            break
        i, j = bridges[0]
        # Close the smallest rectangle through the bridge: (i, j), (i, b), (a, b), (a, j).
        best: list[tuple[int, int]] = []
        best_cost: tuple[int, int] | None = None
        for a in range(n_rows + 1):
            for b in range(n_cols + 1):
                if a == i or b == j:
                    continue
                new = [p for p in ((i, b), (a, b), (a, j)) if p not in hidden]
                cost = (sum(value(*p) for p in new), len(new))
                if best_cost is None or cost < best_cost:
                    best, best_cost = new, cost
        # The extended table is at least 2 × 2, and a bridge is on no hidden rectangle: ``best`` is not empty.
        for p in best:
            hidden[p] = Hidden.COMPLEMENT

    def shown(i: int, j: int) -> int | None:
        return None if (i, j) in hidden else value(i, j)

    return Protected(
        cells=[[shown(i, j) for j in range(n_cols)] for i in range(n_rows)],
        row_totals=[shown(i, n_cols) for i in range(n_rows)],
        col_totals=[shown(n_rows, j) for j in range(n_cols)],
        total=shown(n_rows, n_cols),
        hidden=hidden,
    )
