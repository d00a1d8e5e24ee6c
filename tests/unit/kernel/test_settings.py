"""Settings: env and TOML, validated with a message naming the bad setting; secrets generated 0600."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from qorgau.settings import SettingsError, ensure_secrets, load_settings


def test_environment_overrides_toml_and_defaults(tmp_path: Path) -> None:
    cfg = tmp_path / "q.toml"
    cfg.write_text('[qorgau]\nport = 9000\nledger_origin = "ledger.example.kz"\n')
    s = load_settings(cfg, env={"QORGAU_PORT": "9100"})
    assert s.port == 9100 and s.ledger_origin == "ledger.example.kz" and s.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"QORGAU_PORT": "eighty"}, "QORGAU_PORT"),
        ({"QORGAU_PORT": "70000"}, "QORGAU_PORT"),
        ({"QORGAU_BUS": "kafka://x"}, "QORGAU_BUS"),
        ({"QORGAU_DEFAULT_LANGUAGE": "de"}, "QORGAU_DEFAULT_LANGUAGE"),
        ({"QORGAU_SECRET_KEY": "abcd"}, "QORGAU_SECRET_KEY"),
        ({"QORGAU_DATABASE_URL": "mysql://x"}, "QORGAU_DATABASE_URL"),
        ({"QORGAU_COOKIE_SECURE": "maybe"}, "QORGAU_COOKIE_SECURE"),
    ],
)
def test_bad_setting_is_named(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(env=env)


def test_unknown_key_in_toml_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "q.toml"
    cfg.write_text("prot = 1\n")
    with pytest.raises(SettingsError, match="prot"):
        load_settings(cfg, env={})


def test_secret_generated_once_with_private_mode(tmp_path: Path) -> None:
    s1 = ensure_secrets(load_settings(env={}, data_dir=tmp_path / "d"))
    s2 = ensure_secrets(load_settings(env={}, data_dir=tmp_path / "d"))
    assert s1.secret_key == s2.secret_key and len(s1.secret_bytes) == 32
    mode = stat.S_IMODE((tmp_path / "d" / "secrets.json").stat().st_mode)
    assert mode == 0o600
