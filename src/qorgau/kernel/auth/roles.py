"""Roles and the actor making a request."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from qorgau.kernel.i18n import N_


class Role(StrEnum):
    CITIZEN = "citizen"
    OFFICIAL = "official"
    AGENCY_ADMIN = "agency_admin"
    POLICE_OFFICER = "police_officer"
    REGULATOR_INSPECTOR = "regulator_inspector"
    SECURITY_OFFICER = "security_officer"
    BUILDING_OWNER = "building_owner"
    GUARD = "guard"
    ORG_OPERATOR = "org_operator"
    PLATFORM_ADMIN = "platform_admin"


ROLE_LABELS: dict[Role, str] = {
    Role.CITIZEN: N_("Citizen"),
    Role.OFFICIAL: N_("Official"),
    Role.AGENCY_ADMIN: N_("Agency administrator"),
    Role.POLICE_OFFICER: N_("Police officer"),
    Role.REGULATOR_INSPECTOR: N_("Regulator inspector"),
    Role.SECURITY_OFFICER: N_("Security officer"),
    Role.BUILDING_OWNER: N_("Building owner"),
    Role.GUARD: N_("Guard"),
    Role.ORG_OPERATOR: N_("Data controller operator"),
    Role.PLATFORM_ADMIN: N_("Platform administrator"),
}

# Roles that belong to a state body and therefore need an agency.
AGENCY_ROLES = frozenset(
    {
        Role.OFFICIAL,
        Role.AGENCY_ADMIN,
        Role.POLICE_OFFICER,
        Role.REGULATOR_INSPECTOR,
        Role.SECURITY_OFFICER,
    }
)


class AgencyKind(StrEnum):
    AGENCY = "agency"
    POLICE_UNIT = "police_unit"
    REGULATOR_UNIT = "regulator_unit"


AGENCY_KIND_LABELS: dict[AgencyKind, str] = {
    AgencyKind.AGENCY: N_("Government agency"),
    AgencyKind.POLICE_UNIT: N_("Police unit"),
    AgencyKind.REGULATOR_UNIT: N_("Regulator unit"),
}


@dataclass(frozen=True)
class Actor:
    """Who is acting: a signed-in account (by session or API token)."""

    user_id: str
    username: str
    role: Role
    display_name: str
    agency_id: str | None = None
    locale: str | None = None
    via: str = "session"
    scopes: frozenset[str] = field(default_factory=frozenset)
    session_id: str | None = None

    def has_scope(self, scope: str) -> bool:
        return self.via != "token" or scope in self.scopes or "*" in self.scopes
