"""The error model: every failure a client sees is RFC 9457 problem+json with a stable `code`.

Services raise `Problem`; transports turn it into problem+json (API) or a friendly page (HTML).
Titles are translated from the catalogue; details never carry a stack trace or personal data.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from qorgau.kernel.i18n import N_, gettext

# code -> (HTTP status, untranslated title). The code is the contract; titles may change wording.
CATALOGUE: dict[str, tuple[int, str]] = {
    "validation.field": (400, N_("A field has an invalid value")),
    "validation.body": (400, N_("The request body could not be read")),
    "validation.parameter": (400, N_("A query parameter is missing or invalid")),
    "auth.invalid_credentials": (401, N_("Invalid username or password")),
    "auth.required": (401, N_("Please sign in to continue")),
    "auth.locked": (429, N_("Too many failed sign-in attempts; try again later")),
    "auth.forbidden": (403, N_("You do not have permission to do this")),
    "auth.csrf": (403, N_("The form has expired; reload the page and try again")),
    "auth.token_invalid": (401, N_("The access token is invalid or revoked")),
    "auth.username_taken": (409, N_("This username is already taken")),
    "auth.iin_taken": (409, N_("An account with this IIN already exists")),
    "auth.weak_password": (400, N_("The password is too short")),
    "auth.unknown_role": (400, N_("Unknown role")),
    "auth.unknown_agency": (400, N_("Unknown agency")),
    "auth.disabled": (403, N_("This account is disabled")),
    "auth.invite_unknown": (404, N_("This invitation link is not valid")),
    "auth.invite_expired": (410, N_("This invitation link has expired")),
    "auth.invite_used": (410, N_("This invitation link has already been used")),
    "auth.invite_revoked": (410, N_("This invitation link was replaced by a newer one")),
    "auth.invite_joined": (409, N_("This person has already joined")),
    "auth.invite_role": (400, N_("Invitations are for accounts of an agency")),
    "auth.password_mismatch": (400, N_("The two passwords differ")),
    "kz.iin.invalid": (400, N_("This is not a valid IIN")),
    "kz.phone.invalid": (400, N_("This is not a valid Kazakhstan phone number")),
    "ledger.out_of_range": (400, N_("The requested range is outside the signed log")),
    "ledger.not_found": (404, N_("No such entry in the log")),
    "reports.unknown_category": (400, N_("Choose what happened from the list")),
    "reports.description_length": (400, N_("Describe what happened in 10 to 4,000 characters")),
    "reports.unknown_region": (400, N_("Choose the region from the list")),
    "reports.point_outside": (400, N_("The coordinates are outside Kazakhstan")),
    "reports.occurred_in_future": (400, N_("The time of the incident cannot be in the future")),
    "reports.attachment_type": (415, N_("Only photos (JPEG, PNG, WebP), videos and voice recordings are accepted")),
    "reports.attachment_too_large": (413, N_("A file is too large")),
    "reports.attachment_unreadable": (400, N_("A file could not be read")),
    "reports.attachment_empty": (400, N_("A file is empty")),
    "reports.too_many_attachments": (400, N_("Too many files attached")),
    "reports.too_many_submissions": (429, N_("Too many reports from this connection; try again in an hour")),
    "reports.no_unit": (503, N_("No police unit can receive reports for this region yet")),
    "reports.receipt_mistyped": (400, N_("This receipt has a typo: check the digits")),
    "reports.receipt_unknown": (404, N_("No report matches this receipt")),
    "reports.receipt_throttled": (429, N_("Too many wrong receipts; try again later")),
    "reports.follow_up_expired": (403, N_("This page has expired; enter your receipt again")),
    "reports.message_empty": (400, N_("Write a message or attach a file")),
    "reports.message_length": (400, N_("The message is longer than 4,000 characters")),
    "reports.closed_for_messages": (409, N_("This report is closed: no more messages can be added")),
    "reports.unknown_action": (400, N_("Unknown step")),
    "reports.illegal_transition": (409, N_("This step is not possible in the report's current state")),
    "reports.unknown_reason": (400, N_("Choose a reason from the list")),
    "reports.note_required": (400, N_("Write a note for this step")),
    "reports.unknown_unit": (400, N_("Choose the unit to forward the report to")),
    "reports.unknown_duplicate": (400, N_("Your unit has no other open report with this reference")),
    "reports.anonymous_reveal": (409, N_("This report is anonymous: there is no identity to reveal")),
    "reports.reveal_not_false": (409, N_("An identity can be revealed only for a report found knowingly false")),
    "reports.reveal_pending": (409, N_("A request for this report is already waiting for a decision")),
    "reports.reveal_decided": (409, N_("This request has already been decided")),
    "reports.reveal_not_approved": (409, N_("This request has not been approved")),
    "letters.subject_length": (400, N_("Write a subject of 1 to 300 characters")),
    "letters.body_length": (400, N_("Write the letter's text, up to 20,000 characters")),
    "letters.no_addressee": (400, N_("Choose at least one addressee agency")),
    "letters.unknown_addressee": (400, N_("Choose the addressee from the list")),
    "letters.due_in_past": (400, N_("The due date cannot be in the past")),
    "letters.not_found": (404, N_("No such letter in your agency's registry")),
    "letters.reply_not_allowed": (409, N_("Only an agency the letter was addressed to can answer it")),
    "letters.too_many_attachments": (400, N_("Too many files attached")),
    "letters.attachment_too_large": (413, N_("A file is too large")),
    "letters.attachment_unreadable": (400, N_("A file could not be read")),
    "notices.title_length": (400, N_("Write a title of 1 to 200 characters")),
    "notices.body_length": (400, N_("Write the notice's text, up to 4,000 characters")),
    "notices.no_recipients": (400, N_("No official matches the chosen agencies, roles and regions")),
    "notices.not_found": (404, N_("No such notice")),
    "http.not_found": (404, N_("Page not found")),
    "http.method_not_allowed": (405, N_("Method not allowed")),
    "http.too_large": (413, N_("The request is too large")),
    "http.unsupported_media_type": (415, N_("Unsupported content type")),
    "http.error": (400, N_("The request could not be processed")),
    "internal": (500, N_("Something went wrong on our side")),
    "unavailable": (503, N_("The service is temporarily unavailable")),
}


@dataclass
class Problem(Exception):
    """A failure with a stable code; `field` names the input at fault for validation errors."""

    code: str
    detail: str | None = None
    field: str | None = None
    status: int | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)
    headers: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.code)
        if self.status is None:
            self.status = CATALOGUE.get(self.code, (400, ""))[0]

    def title(self, lang: str) -> str:
        return title_for(self.code, lang)

    def to_dict(self, lang: str, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"urn:qorgau:problem:{self.code}",
            "title": self.title(lang),
            "status": self.status,
            "code": self.code,
        }
        if self.detail:
            body["detail"] = self.detail
        if self.field:
            body["field"] = self.field
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


def title_for(code: str, lang: str) -> str:
    """The translated title of a problem code (a generic one for unknown codes)."""
    _status, title = CATALOGUE.get(code, CATALOGUE["http.error"])
    return gettext(lang, title)


def invalid(field_name: str, detail: str | None = None, code: str = "validation.field") -> Problem:
    """A validation problem naming the field at fault."""
    return Problem(code, detail=detail, field=field_name)


def forbidden(detail: str | None = None) -> Problem:
    return Problem("auth.forbidden", detail=detail)


def not_found(detail: str | None = None) -> Problem:
    return Problem("http.not_found", detail=detail)
