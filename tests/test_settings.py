"""Settings come from TENANTRY_* variables and an optional TOML file, variables winning."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tenantry.settings import Settings


def test_environment_and_toml(tmp_path, monkeypatch):
    toml = tmp_path / "tenantry.toml"
    toml.write_text('port = 9100\ncell = "eu-1"\nlog_level = "DEBUG"\n')
    monkeypatch.setenv("TENANTRY_CONFIG_FILE", str(toml))
    monkeypatch.setenv("TENANTRY_PORT", "9200")
    monkeypatch.delenv("TENANTRY_DATABASE_URL", raising=False)
    settings = Settings()
    assert settings.port == 9200  # the variable wins over the file
    assert settings.cell == "eu-1" and settings.log_level == "DEBUG"
    assert settings.embedded


def test_invalid_values_are_refused(monkeypatch):
    monkeypatch.setenv("TENANTRY_PORT", "not-a-port")
    with pytest.raises(ValidationError, match="port"):
        Settings()


def test_settings_cannot_change_after_reading():
    settings = Settings(port=8123)
    with pytest.raises(ValidationError):
        settings.port = 9000
