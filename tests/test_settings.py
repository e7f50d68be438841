from __future__ import annotations

import re
from pathlib import Path

import pytest

from app.settings import SettingError, Settings, declared

README = Path(__file__).resolve().parent.parent / "README.md"


def test_defaults():
    settings = Settings.from_env(environ={})
    assert (settings.host, settings.port, settings.db_path) == ("127.0.0.1", 8080, "maitre.db")
    assert settings.restore_window_minutes == 30
    assert settings.max_connections_per_restaurant == 20
    assert settings.allowed_origins == ()


def test_environment_then_overrides():
    environ = {"MAITRE_PORT": "9000", "MAITRE_HOST": "0.0.0.0", "MAITRE_ALLOWED_ORIGINS": "https://a.example, https://b.example/",
               "MAITRE_LOG_LEVEL": "debug", "UNRELATED": "x"}
    settings = Settings.from_env(environ=environ, port=9100)
    assert settings.port == 9100
    assert settings.host == "0.0.0.0"
    assert settings.allowed_origins == ("https://a.example", "https://b.example")
    assert settings.log_level == "DEBUG"


def test_trusted_proxies_are_addresses_or_networks():
    settings = Settings.from_env(environ={"MAITRE_TRUSTED_PROXIES": "127.0.0.1, 10.1.0.0/16,::1"})
    assert [str(network) for network in settings.trusted_proxies] == ["127.0.0.1/32", "10.1.0.0/16", "::1/128"]
    assert Settings.from_env(environ={}).trusted_proxies == ()


@pytest.mark.parametrize(("name", "value"), [
    ("MAITRE_PORT", "eighty"), ("MAITRE_PORT", "70000"), ("MAITRE_RESTORE_WINDOW_MINUTES", "0"),
    ("MAITRE_ALLOWED_ORIGINS", "https://*.example"), ("MAITRE_ALLOWED_ORIGINS", "tablet.example"),
    ("MAITRE_LOG_LEVEL", "loud"), ("MAITRE_IDLE_WARNING_MINUTES", "50"), ("MAITRE_TRUSTED_PROXIES", "nginx"),
    ("MAITRE_TRUSTED_PROXIES", "10.0.0.0/33"),
])
def test_bad_values_name_the_setting(name, value):
    with pytest.raises(SettingError, match=name if name != "MAITRE_IDLE_WARNING_MINUTES" else "idle_warning"):
        Settings.from_env(environ={name: value})


def test_every_setting_is_documented_in_the_readme():
    text = README.read_text(encoding="utf-8")
    rows = {match.group(1): match.group(0) for match in re.finditer(r"^\| `(MAITRE_[A-Z_]+)` \|.*$", text, re.M)}
    for spec in declared():
        assert spec.env in rows, f"{spec.env} is missing from the README's settings table"
        assert f"`{spec.flag}`" in rows[spec.env], f"{spec.env}'s row does not name its flag {spec.flag}"
        default = ",".join(spec.default) if isinstance(spec.default, tuple) else str(spec.default)
        assert f"`{default}`" in rows[spec.env] or not default, f"{spec.env}'s row does not give its default"
    assert set(rows) == {spec.env for spec in declared()}, "the README documents a setting that does not exist"
