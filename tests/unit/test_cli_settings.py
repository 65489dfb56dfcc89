"""Settings that reach Config from a flag, the environment and the TOML file."""

from __future__ import annotations

from pathlib import Path

import pytest

from hive._config import Config
from hive.cli.commands import _settings, run


def settings(args: list[str], config_file: str | None = None) -> Config:
    ctx = run.make_context("run", ["examples.site:root", *args])
    return _settings(ctx, "examples.site:root", config_file)


def test_websocket_drain_timeout_from_each_layer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert settings([]).connection.websocket_drain_timeout == 5.0
    toml = tmp_path / "hive.toml"
    toml.write_text("websocket-drain-timeout = 2.5\n")
    from_file = settings([], str(toml))
    assert from_file.connection.websocket_drain_timeout == 2.5
    monkeypatch.setenv("HIVE_WEBSOCKET_DRAIN_TIMEOUT", "7")
    from_env = settings([], str(toml))
    assert from_env.connection.websocket_drain_timeout == 7.0
    from_flag = settings(["--websocket-drain-timeout", "1"], str(toml))
    assert from_flag.connection.websocket_drain_timeout == 1.0


def test_the_sample_config_file_names_the_setting() -> None:
    sample = Path(__file__).resolve().parents[2] / "ops" / "hive.toml"
    assert "# websocket-drain-timeout = 5.0" in sample.read_text()
