"""Who may do what with reports (registered with the kernel's policy; services call `require`).

Staff rules receive a :class:`UnitScope`: the police unit responsible for the report (or the queue),
so an officer of one unit can never act on another unit's reports. Which step of the regulation a
role may take is the domain's decision (:mod:`qorgau.reports.domain`), checked after these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from qorgau.kernel.auth.policy import rule
from qorgau.kernel.auth.roles import Actor, AgencyKind, Role

STAFF_ROLES = frozenset({Role.POLICE_OFFICER, Role.AGENCY_ADMIN})


@dataclass(frozen=True)
class UnitScope:
    """The police unit a staff action concerns, and (for a reveal) who filed the request."""

    unit_id: str | None
    unit_kind: str | None
    requested_by: str | None = None


def _of_unit(actor: Actor | None, scope: Any, roles: frozenset[Role]) -> bool:
    return (
        actor is not None
        and actor.role in roles
        and isinstance(scope, UnitScope)
        and scope.unit_kind == AgencyKind.POLICE_UNIT
        and scope.unit_id is not None
        and actor.agency_id == scope.unit_id
    )


# Anyone may report, without an account; a signed-in citizen may also report under their name.
# Staff accounts report through their own channels, so a report never carries an official's session.
rule("reports.submit")(lambda actor, _r: actor is None or actor.role == Role.CITIZEN)
# The receipt is the only credential of the follow-up pages.
rule("reports.follow_up")(lambda actor, _r: actor is None or actor.role == Role.CITIZEN)
rule("reports.list_own")(lambda actor, _r: actor is not None and actor.role == Role.CITIZEN)


@rule("reports.view_own")
def _view_own(actor: Actor | None, resource: Any) -> bool:
    """A named reporter's own report (the service has matched the account's keyed hash)."""
    return actor is not None and actor.role == Role.CITIZEN and resource is True


@rule("reports.queue")
def _queue(actor: Actor | None, scope: Any) -> bool:
    """Officers and the head of a police unit see that unit's queue and its reports."""
    return _of_unit(actor, scope, STAFF_ROLES)


rule("reports.view")(_queue)
rule("reports.act")(_queue)


@rule("reports.reveal_request")
def _reveal_request(actor: Actor | None, scope: Any) -> bool:
    """An officer of the unit files a reveal request; the head decides, so no one approves their own."""
    return _of_unit(actor, scope, frozenset({Role.POLICE_OFFICER}))


@rule("reports.reveal_decide")
def _reveal_decide(actor: Actor | None, scope: Any) -> bool:
    return _of_unit(actor, scope, frozenset({Role.AGENCY_ADMIN}))


@rule("reports.reveal_open")
def _reveal_open(actor: Actor | None, scope: Any) -> bool:
    """Only the officer whose request was approved sees the identity."""
    return _reveal_request(actor, scope) and actor is not None and scope.requested_by == actor.user_id


# Registering a system that files reports through Open311 is a platform decision.
rule("reports.integrations")(lambda actor, _r: actor is not None and actor.role == Role.PLATFORM_ADMIN)
