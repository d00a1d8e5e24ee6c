"""The use cases of the reports service: every state change goes through one of these ``do_*`` functions."""

from __future__ import annotations

from qorgau.reports import rules as _rules  # noqa: F401  (registers the policy rules)
from qorgau.reports.services.duplicates import do_merge_duplicate
from qorgau.reports.services.police import (
    attachment,
    do_send_report_message,
    do_transition_report,
    officer_view,
    police_units,
    staff_unit,
    unit_queue,
)
from qorgau.reports.services.reporter import (
    check_pass,
    do_answer_report,
    do_mark_notices_read,
    do_withdraw_report,
    issue_pass,
    list_my_reports,
    open_with_receipt,
    own_report_id,
    reporter_report_id,
    reporter_view,
)
from qorgau.reports.services.reveal import (
    REVEAL_REASONS,
    do_decide_reveal,
    do_request_reveal,
    do_reveal_identity,
)
from qorgau.reports.services.submission import NewReport, Submitted, do_submit_report, parse_new_report, preview

__all__ = [
    "REVEAL_REASONS",
    "NewReport",
    "Submitted",
    "attachment",
    "check_pass",
    "do_answer_report",
    "do_decide_reveal",
    "do_mark_notices_read",
    "do_merge_duplicate",
    "do_request_reveal",
    "do_reveal_identity",
    "do_send_report_message",
    "do_submit_report",
    "do_transition_report",
    "do_withdraw_report",
    "issue_pass",
    "list_my_reports",
    "officer_view",
    "open_with_receipt",
    "own_report_id",
    "parse_new_report",
    "police_units",
    "preview",
    "reporter_report_id",
    "reporter_view",
    "staff_unit",
    "unit_queue",
]
