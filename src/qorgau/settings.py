"""Deployment settings: QORGAU_* environment variables, an optional TOML file, then defaults.

Everything is validated once at start; a bad value stops the process with a message that names the
setting. Secrets are never in code: when not given they are generated into the data dir (mode 0600).
"""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from dataclasses import dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from typing import Any

ENV_PREFIX = "QORGAU_"
LANGUAGES = ("kk", "ru", "en")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("var")
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    bus: str = "memory"
    secret_key: str = ""
    keyring_file: Path | None = None
    ledger_origin: str = "ledger.qorgau.example.kz"
    ledger_sign_interval_ms: int = 1000
    server_name: str = "qorgau.example.kz"
    default_language: str = "kk"
    session_ttl_minutes: int = 12 * 60
    login_max_failures: int = 5
    login_lockout_seconds: int = 30
    login_lockout_max_seconds: int = 3600
    cookie_secure: bool | None = None
    log_level: str = "info"
    log_json: bool = True
    # Messenger: m.login.dummy registration for development only (officials are created by admins).
    matrix_open_registration: bool = False
    # How long a woken /sync gathers further events before it answers (coalescing), in milliseconds.
    matrix_sync_coalesce_ms: int = 5
    matrix_media_max_bytes: int = 10 * 1024 * 1024
    # How long messages keep their content, per kind of room (days; 0 keeps them for ever).
    messenger_retention_direct_days: int = 365
    messenger_retention_group_days: int = 1825
    messenger_retention_dsp_days: int = 1825
    # Invitation links for officials: how long a link stays valid.
    invite_ttl_hours: int = 72
    # The date (ISO, YYYY-MM-DD) by which every official must have joined the messenger.
    messenger_transition_deadline: str = "2027-03-01"
    # Citizen reports: the regulation's deadlines, routing, attachments and abuse limits.
    reports_triage_days: int = 1
    reports_decision_days: int = 10
    reports_routing_file: Path | None = None
    reports_fallback_unit: str = ""
    reports_max_attachment_bytes: int = 8 * 1024 * 1024
    reports_max_attachments: int = 4
    reports_receipt_max_failures: int = 5
    reports_receipt_lockout_seconds: int = 60
    reports_submissions_per_hour: int = 10
    # Reports of the same unit, category and place submitted within this many hours are suggested as duplicates.
    reports_duplicate_window_hours: int = 72
    # Closed reports lose their content (text, files, identity, messages, place) this many days after closing.
    reports_retention_days: int = 365
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'qorgau.db').resolve()}"

    @property
    def resolved_keyring_file(self) -> Path:
        return self.keyring_file or self.data_dir / "keyring.json"

    @property
    def secret_bytes(self) -> bytes:
        return bytes.fromhex(self.secret_key)


def _coerce(name: str, typ: Any, raw: Any) -> Any:
    typ_s = str(typ)
    try:
        if typ_s in ("int",):
            if isinstance(raw, bool):
                raise ValueError
            return int(raw)
        if typ_s.startswith("bool"):
            if raw is None or raw == "":
                return None
            if isinstance(raw, bool):
                return raw
            low = str(raw).strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if "Path" in typ_s:
            return Path(str(raw)) if raw not in (None, "") else None
        if typ_s == "str":
            return str(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"setting {ENV_PREFIX}{name.upper()} has an invalid value {raw!r}") from None
    return raw


def _validate(s: Settings) -> None:
    def bad(name: str, why: str) -> SettingsError:
        return SettingsError(f"setting {ENV_PREFIX}{name.upper()}: {why}")

    if not 0 < s.port < 65536:
        raise bad("port", "must be between 1 and 65535")
    if s.workers < 1:
        raise bad("workers", "must be at least 1")
    if not (s.bus == "memory" or s.bus.startswith(("redis://", "rediss://"))):
        raise bad("bus", "must be 'memory' or a redis:// URL")
    if s.database_url and not s.database_url.startswith(("sqlite:", "postgresql")):
        raise bad("database_url", "must be a sqlite:/// or postgresql:// URL")
    if s.default_language not in LANGUAGES:
        raise bad("default_language", f"must be one of {', '.join(LANGUAGES)}")
    if s.secret_key:
        try:
            key = bytes.fromhex(s.secret_key)
        except ValueError:
            raise bad("secret_key", "must be hex") from None
        if len(key) < 32:
            raise bad("secret_key", "must be at least 32 bytes (64 hex characters)")
    if not s.ledger_origin or any(c.isspace() for c in s.ledger_origin) or "+" in s.ledger_origin:
        raise bad("ledger_origin", "must be a non-empty name without spaces or '+'")
    for name in (
        "session_ttl_minutes",
        "login_max_failures",
        "login_lockout_seconds",
        "ledger_sign_interval_ms",
    ):
        if getattr(s, name) < 1:
            raise bad(name, "must be positive")
    if s.log_level.lower() not in ("debug", "info", "warning", "error"):
        raise bad("log_level", "must be debug, info, warning or error")
    for name in (
        "reports_triage_days",
        "reports_decision_days",
        "reports_max_attachment_bytes",
        "reports_max_attachments",
        "reports_receipt_max_failures",
        "reports_receipt_lockout_seconds",
        "reports_submissions_per_hour",
        "reports_duplicate_window_hours",
        "reports_retention_days",
    ):
        if getattr(s, name) < 1:
            raise bad(name, "must be positive")
    if s.reports_routing_file is not None and not s.reports_routing_file.is_file():
        raise bad("reports_routing_file", "must name an existing routing file")
    if not 0 <= s.matrix_sync_coalesce_ms <= 1000:
        raise bad("matrix_sync_coalesce_ms", "must be between 0 and 1000")
    if not 1024 <= s.matrix_media_max_bytes <= 1024**3:
        raise bad("matrix_media_max_bytes", "must be between 1 KiB and 1 GiB")
    for name in ("messenger_retention_direct_days", "messenger_retention_group_days", "messenger_retention_dsp_days"):
        if not 0 <= getattr(s, name) <= 36500:
            raise bad(name, "must be a number of days between 0 (keep for ever) and 36500")
    if not 1 <= s.invite_ttl_hours <= 24 * 90:
        raise bad("invite_ttl_hours", "must be between 1 and 2160 (90 days)")
    if not _is_iso_date(s.messenger_transition_deadline):
        raise bad("messenger_transition_deadline", "must be a date written YYYY-MM-DD")


def _is_iso_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10


def load_settings(
    config_file: Path | None = None,
    env: dict[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Build settings from defaults < TOML file < QORGAU_* variables < explicit overrides.

    Overrides whose value is None are ignored, so CLI options can be passed straight through.
    """
    env = dict(os.environ if env is None else env)
    values: dict[str, Any] = {}
    known = {f.name: f for f in fields(Settings) if f.name != "extra"}
    cfg = config_file or (Path(env[f"{ENV_PREFIX}CONFIG"]) if env.get(f"{ENV_PREFIX}CONFIG") else None)
    if cfg is not None:
        try:
            data = tomllib.loads(Path(cfg).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"config file {cfg} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"config file {cfg} is not valid TOML: {exc}") from None
        data = data.get("qorgau", data)
        for key, raw in data.items():
            if key not in known:
                raise SettingsError(f"config file {cfg}: unknown setting {key!r}")
            values[key] = raw
    for name in known:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = raw
    for name, raw in overrides.items():
        if raw is not None:
            if name not in known:
                raise SettingsError(f"unknown setting {name!r}")
            values[name] = raw
    coerced = {name: _coerce(name, known[name].type, raw) for name, raw in values.items()}
    if coerced.get("data_dir") is None:
        coerced.pop("data_dir", None)
    settings = Settings(**coerced)
    _validate(settings)
    return settings


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def ensure_secrets(settings: Settings) -> Settings:
    """Create the data dir and fill in secrets not given: generated once, kept in secrets.json (0600)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.secret_key:
        return settings
    path = settings.data_dir / "secrets.json"
    if path.exists():
        stored = json.loads(path.read_text(encoding="utf-8"))
    else:
        stored = {"secret_key": secrets.token_hex(32)}
        _write_private(path, json.dumps(stored, indent=2))
    return replace(settings, secret_key=stored["secret_key"])
