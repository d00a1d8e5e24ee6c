"""The one place that decides who may do what: `can(actor, action, resource)`.

Services register their rules here (by action name) and call `require` before they act; templates and
routes never decide. An unknown action is denied, so a forgotten rule fails closed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qorgau.kernel.auth.roles import Actor, Role
from qorgau.kernel.errors import Problem

Rule = Callable[[Actor | None, Any], bool]
_RULES: dict[str, Rule] = {}


def rule(action: str) -> Callable[[Rule], Rule]:
    """Register the rule deciding `action`; each action has exactly one rule."""

    def register(fn: Rule) -> Rule:
        if action in _RULES and _RULES[action] is not fn:
            raise RuntimeError(f"a rule for {action!r} is already registered")
        _RULES[action] = fn
        return fn

    return register


def can(actor: Actor | None, action: str, resource: Any = None) -> bool:
    """Whether `actor` (None: anonymous) may perform `action` on `resource`."""
    decide = _RULES.get(action)
    if decide is None:
        return False
    if actor is not None and not actor.has_scope(action.split(".", 1)[0]):
        return False
    return bool(decide(actor, resource))


def require(actor: Actor | None, action: str, resource: Any = None) -> Actor:
    """Raise `auth.required` (anonymous) or `auth.forbidden` unless `can`; return the actor."""
    if not can(actor, action, resource):
        if actor is None and action not in PUBLIC_ACTIONS:
            raise Problem("auth.required")
        raise Problem("auth.forbidden")
    return actor  # type: ignore[return-value]


def registered_actions() -> list[str]:
    return sorted(_RULES)


def _is(*roles: Role) -> Rule:
    return lambda actor, _res: actor is not None and actor.role in roles


PUBLIC_ACTIONS = frozenset({"ledger.read"})

rule("ledger.read")(lambda _a, _r: True)
rule("home.view")(lambda actor, _r: actor is not None)
rule("account.manage_tokens")(lambda actor, _r: actor is not None)
rule("users.list")(_is(Role.PLATFORM_ADMIN, Role.AGENCY_ADMIN))
rule("users.set_role")(_is(Role.PLATFORM_ADMIN))
rule("agencies.manage")(_is(Role.PLATFORM_ADMIN))
rule("events.read")(_is(Role.PLATFORM_ADMIN))
rule("ledger.sign")(_is(Role.PLATFORM_ADMIN))


@rule("users.create")
def _create_user(actor: Actor | None, resource: Any) -> bool:
    """Platform admins create anyone; an agency admin creates officials of their own agency only."""
    if actor is None:
        return False
    if actor.role == Role.PLATFORM_ADMIN:
        return True
    if actor.role == Role.AGENCY_ADMIN and isinstance(resource, dict):
        return resource.get("role") == Role.OFFICIAL and resource.get("agency_id") == actor.agency_id
    return False


# Inviting someone by link is creating their account without a password: the same people decide.
rule("users.invite")(_create_user)


@rule("users.view")
def _view_user(actor: Actor | None, resource: Any) -> bool:
    if actor is None or not isinstance(resource, dict):
        return False
    if actor.role == Role.PLATFORM_ADMIN or actor.user_id == resource.get("id"):
        return True
    return actor.role == Role.AGENCY_ADMIN and resource.get("agency_id") == actor.agency_id
