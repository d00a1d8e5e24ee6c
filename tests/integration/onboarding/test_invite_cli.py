"""`qorgau users create` without a password invites the official and prints a one-time link."""

from __future__ import annotations

import re
from typing import Any

from qorgau.kernel.auth import invites
from tests.integration.test_cli import run, target


def test_operator_invites_an_official_by_link(kernel: Any, settings: Any, demo: Any) -> None:
    result = run("users", "create", "--username", "Bota.K", "--role", "official", "--agency", "astana-digital",
                 "--base-url", "https://qorgau.gov.kz", *target(settings))  # fmt: skip
    assert result.exit_code == 0, result.output
    found = re.search(r"https://qorgau\.gov\.kz/invite/([A-Za-z0-9_-]{43})", result.output)
    assert found, result.output
    opened = invites.open_invite(kernel, found.group(1))
    assert opened.username == "bota.k"
    signed = invites.do_accept_invite(kernel, found.group(1), "bota-long-password")
    assert signed.actor.username == "bota.k"


def test_a_non_agency_role_still_needs_a_password(settings: Any, demo: Any) -> None:
    result = run("users", "create", "--username", "guard.two", "--role", "guard", *target(settings))
    assert result.exit_code != 0 and "--password-stdin" in result.output
