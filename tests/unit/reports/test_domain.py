"""The verification regulation: every legal step is allowed, every other one refused with its reason."""

from __future__ import annotations

import itertools

import pytest

from qorgau.reports.domain import (
    DAY_MS,
    FINAL,
    STEPS,
    Action,
    Deadlines,
    Status,
    WorkflowError,
    WorkflowRole,
    available_steps,
    decide,
    due_after,
    is_overdue,
    point_in_country,
    reporter_may_write,
)

S, A, R = Status, Action, WorkflowRole
OFFICER, SUPERVISOR, REPORTER = R.OFFICER, R.SUPERVISOR, R.REPORTER
STAFF = {OFFICER, SUPERVISOR}
OPEN = {S.NEW, S.FORWARDED, S.TRIAGED, S.IN_VERIFICATION}

# The regulation, written out by hand: (from, action) -> (to, who may). Any other pair is illegal.
REGULATION: dict[tuple[Status, Action], tuple[Status, set[WorkflowRole]]] = {
    (S.NEW, A.TRIAGE): (S.TRIAGED, STAFF),
    (S.FORWARDED, A.TRIAGE): (S.TRIAGED, STAFF),
    (S.TRIAGED, A.START_VERIFICATION): (S.IN_VERIFICATION, STAFF),
    (S.IN_VERIFICATION, A.CONFIRM): (S.CONFIRMED, STAFF),
    (S.IN_VERIFICATION, A.NOT_CONFIRM): (S.NOT_CONFIRMED, STAFF),
    (S.IN_VERIFICATION, A.MARK_KNOWINGLY_FALSE): (S.KNOWINGLY_FALSE, {SUPERVISOR}),
    (S.CONFIRMED, A.CLOSE): (S.CLOSED, STAFF),
    (S.NOT_CONFIRMED, A.CLOSE): (S.CLOSED, STAFF),
    (S.KNOWINGLY_FALSE, A.CLOSE): (S.CLOSED, STAFF),
    **{(s, A.MERGE_DUPLICATE): (S.MERGED_DUPLICATE, STAFF) for s in OPEN},
    **{(s, A.FORWARD): (S.FORWARDED, STAFF) for s in OPEN},
    (S.NEW, A.WITHDRAW): (S.WITHDRAWN, {REPORTER}),
}


def _good_reason(action: Action) -> str:
    return STEPS[action].reasons[0].code


@pytest.mark.parametrize(
    ("status", "action", "role"),
    list(itertools.product(Status, Action, WorkflowRole)),
    ids=lambda v: str(v),
)
def test_every_step_of_the_regulation_for_every_role(status: Status, action: Action, role: WorkflowRole) -> None:
    legal = REGULATION.get((status, action))
    if legal is not None and role in legal[1]:
        decision = decide(status, action, role, _good_reason(action), "checked on the spot")
        assert decision.target == legal[0]
        assert decision.reason.code == _good_reason(action)
        return
    with pytest.raises(WorkflowError) as refused:
        decide(status, action, role, _good_reason(action), "checked on the spot")
    if role not in STEPS[action].roles:
        assert refused.value.code == "auth.forbidden"
    else:
        assert refused.value.code == "reports.illegal_transition"


def test_the_written_regulation_is_the_one_in_the_code() -> None:
    in_code = {(src, step.action): (step.target, set(step.roles)) for step in STEPS.values() for src in step.sources}
    assert in_code == REGULATION


def test_final_states_allow_nothing() -> None:
    for status, role in itertools.product(FINAL, WorkflowRole):
        assert available_steps(status, role) == []


def test_a_step_needs_a_reason_from_its_own_list() -> None:
    with pytest.raises(WorkflowError) as refused:
        decide(S.NEW, A.TRIAGE, OFFICER, "no_evidence", "a reason of another step")
    assert (refused.value.code, refused.value.field) == ("reports.unknown_reason", "reason")
    with pytest.raises(WorkflowError) as unknown:
        decide(S.NEW, "promote", OFFICER, "x", "y")
    assert unknown.value.code == "reports.unknown_action"


@pytest.mark.parametrize("action", [a for a in Action if a != A.WITHDRAW])
def test_every_police_step_needs_a_note(action: Action) -> None:
    step = STEPS[action]
    source = next(iter(step.sources))
    role = SUPERVISOR
    with pytest.raises(WorkflowError) as refused:
        decide(source, action, role, _good_reason(action), "   ")
    assert (refused.value.code, refused.value.field) == ("reports.note_required", "note")
    with pytest.raises(WorkflowError) as long_note:
        decide(source, action, role, _good_reason(action), "x" * 2001)
    assert long_note.value.field == "note"


def test_a_reporter_withdraws_without_a_note() -> None:
    assert decide(S.NEW, A.WITHDRAW, REPORTER, "mistake", "").target == S.WITHDRAWN


def test_reason_codes_are_unique_across_steps() -> None:
    codes = [r.code for step in STEPS.values() for r in step.reasons]
    assert len(codes) == len(set(codes))


def test_what_an_officer_may_do_next() -> None:
    assert [s.action for s in available_steps(S.IN_VERIFICATION, OFFICER)] == [
        A.CONFIRM,
        A.NOT_CONFIRM,
        A.MERGE_DUPLICATE,
        A.FORWARD,
    ]
    assert A.MARK_KNOWINGLY_FALSE in [s.action for s in available_steps(S.IN_VERIFICATION, SUPERVISOR)]
    assert [s.action for s in available_steps(S.NEW, REPORTER)] == [A.WITHDRAW]


def test_deadlines_triage_then_decision() -> None:
    d = Deadlines.in_days(1, 10)
    t0 = 1_700_000_000_000
    assert due_after(S.NEW, t0, None, d) == t0 + DAY_MS
    assert due_after(S.FORWARDED, t0, t0 + 5, d) == t0 + DAY_MS  # the receiving unit gets a fresh day
    triaged_due = due_after(S.TRIAGED, t0, t0 + DAY_MS, d)
    assert triaged_due == t0 + 10 * DAY_MS
    assert due_after(S.IN_VERIFICATION, t0 + 3 * DAY_MS, triaged_due, d) == triaged_due
    for decided in (S.CONFIRMED, S.NOT_CONFIRMED, S.KNOWINGLY_FALSE, S.CLOSED, S.WITHDRAWN, S.MERGED_DUPLICATE):
        assert due_after(decided, t0, triaged_due, d) is None


def test_overdue_only_after_the_deadline() -> None:
    assert not is_overdue(None, 10)
    assert not is_overdue(10, 10)
    assert is_overdue(10, 11)


def test_the_reporter_writes_until_the_report_is_final() -> None:
    assert reporter_may_write(S.IN_VERIFICATION)
    assert reporter_may_write(S.CONFIRMED)
    assert not any(reporter_may_write(s) for s in FINAL)


def test_points_outside_kazakhstan_are_refused() -> None:
    assert point_in_country(43.2389, 76.8897)  # Almaty
    assert point_in_country(51.1694, 71.4491)  # Astana
    assert not point_in_country(55.7558, 37.6173)  # Moscow
    assert not point_in_country(0, 0)
