"""What each role's home page links to. Services add their sections as their issues land."""

from __future__ import annotations

from dataclasses import dataclass

from qorgau.kernel.auth.policy import can
from qorgau.kernel.auth.roles import Actor
from qorgau.kernel.i18n import N_


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    summary: str
    href: str | None
    action: str | None  # the policy action that decides whether the actor sees it


SECTIONS: list[Section] = [
    Section("messenger", N_("Messenger"), N_("Chats, official letters and government notices"), None, "home.view"),
    Section("reports", N_("Citizen reports"), N_("Reports to the police and regulators"), None, "home.view"),
    Section(
        "consent",
        N_("Consent registry"),
        N_("Who holds personal data, for what, and every access"),
        None,
        "home.view",
    ),
    Section("oversight", N_("Oversight"), N_("Inspections, violations and fines"), None, "home.view"),
    Section("devices", N_("Devices"), N_("Official smartphones and building policies"), None, "home.view"),
    Section("users", N_("Accounts"), N_("People and roles in your agency"), "/admin/users", "users.list"),
    Section(
        "onboarding",
        N_("Onboarding dashboard"),
        N_("Who has joined the messenger, and who is missing before the deadline"),
        "/admin/onboarding",
        "messenger.onboarding.view",
    ),
    Section(
        "ledger",
        N_("Transparency log"),
        N_("Check that the record of decisions is intact"),
        "/transparency",
        "ledger.read",
    ),
    Section(
        "account",
        N_("My account"),
        N_("Language, API tokens and sign-in"),
        "/account",
        "account.manage_tokens",
    ),
]


SERVICE_KEYS = ("messenger", "reports", "consent", "oversight", "devices")


def service_sections() -> list[Section]:
    """The five services, for the public landing page."""
    return [s for s in SECTIONS if s.key in SERVICE_KEYS]


def register_section(section: Section) -> None:
    """A service replaces its placeholder card with its real entry point."""
    for i, existing in enumerate(SECTIONS):
        if existing.key == section.key:
            SECTIONS[i] = section
            return
    SECTIONS.append(section)


def sections_for(actor: Actor) -> list[Section]:
    return [s for s in SECTIONS if s.action is None or can(actor, s.action)]
