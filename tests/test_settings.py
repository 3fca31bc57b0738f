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


def test_the_temporal_ui_url_is_read_checked_and_set_by_a_local_run(monkeypatch):
    from tenantry.runtime.supervisor import with_local_temporal

    monkeypatch.setenv("TENANTRY_TEMPORAL_UI_URL", "https://temporal.example.org/ui")
    assert Settings().temporal_ui_url == "https://temporal.example.org/ui"
    monkeypatch.setenv("TENANTRY_TEMPORAL_UI_URL", "javascript:alert(1)")
    with pytest.raises(ValidationError, match="temporal_ui_url"):
        Settings()
    monkeypatch.delenv("TENANTRY_TEMPORAL_UI_URL")
    # `tenantry run`: the UI it starts, unless one is named; none started, none set.
    local = with_local_temporal(
        Settings(), address="127.0.0.1:7233", ui_url="http://127.0.0.1:8233"
    )
    assert local.temporal_ui_url == "http://127.0.0.1:8233"
    named = Settings(temporal_ui_url="https://ui.example")
    kept = with_local_temporal(named, address="127.0.0.1:7233", ui_url="http://127.0.0.1:8233")
    assert kept.temporal_ui_url == "https://ui.example"
    assert with_local_temporal(Settings(), address="x:1", ui_url=None).temporal_ui_url is None
