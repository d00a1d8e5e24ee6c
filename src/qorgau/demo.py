"""Demo data: agencies in Astana and Almaty, a police unit, a regulator unit, one account per role.

Idempotent: running it twice creates nothing new. Passwords are derived from the deployment secret,
so they are stable for one deployment and differ between deployments (never hard-coded).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import sqlalchemy as sa

from qorgau.kernel.auth import services as auth
from qorgau.kernel.auth import tables as t
from qorgau.kernel.auth.roles import AgencyKind, Role
from qorgau.kernel.context import Kernel

AGENCIES = [
    {
        "code": "astana-digital",
        "kind": AgencyKind.AGENCY,
        "region_code": "astana",
        "names": {
            "kk": "Астана қаласының цифрландыру басқармасы",
            "ru": "Управление цифровизации города Астаны",
            "en": "Astana City Digitalisation Department",
        },
    },
    {
        "code": "almaty-akimat",
        "kind": AgencyKind.AGENCY,
        "region_code": "almaty",
        "names": {
            "kk": "Алматы қаласының әкімдігі",
            "ru": "Акимат города Алматы",
            "en": "Almaty City Akimat",
        },
    },
    {
        "code": "almaty-police",
        "kind": AgencyKind.POLICE_UNIT,
        "region_code": "almaty",
        "names": {
            "kk": "Алматы қаласының полиция департаменті",
            "ru": "Департамент полиции города Алматы",
            "en": "Almaty City Police Department",
        },
    },
    {
        "code": "isc-astana",
        "kind": AgencyKind.REGULATOR_UNIT,
        "region_code": "astana",
        "names": {
            "kk": "Ақпараттық қауіпсіздік комитетінің Астана бойынша департаменті",
            "ru": "Департамент Комитета по информационной безопасности по городу Астане",
            "en": "Information Security Committee, Astana Department",
        },
    },
]

# username, role, agency code, display name
ACCOUNTS = [
    ("admin", Role.PLATFORM_ADMIN, None, "Platform Administrator"),
    ("aigerim.admin", Role.AGENCY_ADMIN, "astana-digital", "Айгерим Сапарова"),
    ("nurlan.official", Role.OFFICIAL, "astana-digital", "Нұрлан Ахметов"),
    ("dana.official", Role.OFFICIAL, "almaty-akimat", "Дана Касымова"),
    ("serik.police", Role.POLICE_OFFICER, "almaty-police", "Серік Жұмабаев"),
    # The head of the police unit: decides requests to reveal a named reporter.
    ("aidos.chief", Role.AGENCY_ADMIN, "almaty-police", "Айдос Кенжебеков"),
    ("madina.inspector", Role.REGULATOR_INSPECTOR, "isc-astana", "Мадина Оспанова"),
    ("erlan.security", Role.SECURITY_OFFICER, "astana-digital", "Ерлан Бекова"),
    ("asel.owner", Role.BUILDING_OWNER, None, "Асель Нурланова"),
    ("bolat.guard", Role.GUARD, None, "Болат Тулегенов"),
    ("kairat.operator", Role.ORG_OPERATOR, None, "Кайрат Абенов"),
]


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    role: str
    agency: str | None
    created: bool


def demo_password(kernel: Kernel, username: str) -> str:
    digest = hmac.new(kernel.settings.secret_bytes, b"demo-password\x00" + username.encode(), hashlib.sha256)
    return "demo-" + digest.hexdigest()[:12]


def load_demo(kernel: Kernel) -> list[DemoAccount]:
    """Create what is missing and return every demo account with its password."""
    for agency in AGENCIES:
        kernel.db.run(
            lambda tx, a=agency: auth.create_agency_tx(
                tx,
                kernel,
                code=a["code"],
                names=a["names"],
                kind=a["kind"],
                region_code=a["region_code"],
                actor=None,
            )
        )
    result = []
    for username, role, agency, name in ACCOUNTS:
        password = demo_password(kernel, username)
        with kernel.db.read() as conn:
            exists = conn.execute(sa.select(t.users.c.id).where(t.users.c.username == username)).scalar()
        if not exists:
            auth.do_create_user(
                None,
                kernel,
                username=username,
                password=password,
                role=role,
                agency=agency,
                display_name=name,
            )
        result.append(DemoAccount(username, password, role.value, agency, created=not exists))
    result.append(_demo_citizen(kernel))
    _demo_invited(kernel)
    return result


# Officials of the demo agency who were invited but have not joined: the onboarding dashboard shows a
# mix (one link still open, one run out). Their links are not kept anywhere: re-issue one from /admin/users.
INVITED = [
    ("timur.seitkali", "astana-digital", "Тимур Сейітқали", 0),
    ("zhanar.abdrakhmanova", "astana-digital", "Жанар Әбдірахманова", 4 * 24 * 3_600_000),
]


def _demo_invited(kernel: Kernel) -> None:
    from qorgau.kernel.auth.invites import do_invite_user

    for username, agency, name, age_ms in INVITED:
        with kernel.db.read() as conn:
            if conn.execute(sa.select(t.users.c.id).where(t.users.c.username == username)).scalar():
                continue
        issued = do_invite_user(None, kernel, username=username, role=Role.OFFICIAL, agency=agency, display_name=name)
        if age_ms:
            # Backdate the invitation so that its link has run out.
            kernel.db.run(
                lambda tx, uid=issued.user_id, age=age_ms: tx.execute(
                    t.account_invites.update()
                    .where(t.account_invites.c.user_id == uid)
                    .values(
                        created_at=t.account_invites.c.created_at - age,
                        expires_at=t.account_invites.c.expires_at - age,
                    )
                )
            )


# The worked example from DOMAIN.md: a valid checksum, used only for the demo citizen.
DEMO_CITIZEN_IIN = "850808301077"
DEMO_CITIZEN_PHONE = "+7 701 234 56 78"


def _demo_citizen(kernel: Kernel) -> DemoAccount:
    password = demo_password(kernel, "citizen")
    iin_hash = kernel.hasher.hash("iin", DEMO_CITIZEN_IIN)
    with kernel.db.read() as conn:
        exists = conn.execute(sa.select(t.users.c.id).where(t.users.c.iin_hash == iin_hash)).scalar()
    if not exists:
        auth.do_sign_up_citizen(
            kernel,
            iin=DEMO_CITIZEN_IIN,
            phone=DEMO_CITIZEN_PHONE,
            password=password,
            display_name="Әлия Серікқызы",
        )
    return DemoAccount(DEMO_CITIZEN_IIN, password, Role.CITIZEN.value, None, created=not exists)
