"""hive._secret: the server's secret, and the secret file several hosts share."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hive import _secret


@pytest.fixture(autouse=True)
def fresh_secret() -> Iterator[None]:
    before = _secret._secret
    _secret._secret = None
    yield
    _secret._secret = before


def test_one_secret_per_process_until_set() -> None:
    first = _secret.server_secret()
    assert len(first) == 32
    assert _secret.server_secret() is first
    _secret.set_secret(b"s" * 40)
    assert _secret.server_secret() == b"s" * 40
    with pytest.raises(ValueError):
        _secret.set_secret(b"short")


def test_the_secret_file(tmp_path: Path) -> None:
    path = tmp_path / "secret"
    path.write_bytes(b"x" * 48 + b"\n")
    os.chmod(path, 0o600)
    assert _secret.load_secret_file(str(path)) == b"x" * 48
    os.chmod(path, 0o640)
    with pytest.raises(_secret.SecretError, match="open to others"):
        _secret.load_secret_file(str(path))
    os.chmod(path, 0o600)
    path.write_bytes(b"x" * 31)
    with pytest.raises(_secret.SecretError, match="31 bytes"):
        _secret.load_secret_file(str(path))
    with pytest.raises(_secret.SecretError, match="cannot open"):
        _secret.load_secret_file(str(tmp_path / "missing"))
    link = tmp_path / "link"
    link.symlink_to(path)
    with pytest.raises(_secret.SecretError, match="cannot open"):
        _secret.load_secret_file(str(link))
