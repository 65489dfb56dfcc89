"""What development mode watches (hive.supervisor.watch), over real files in tmp_path."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from watchfiles import Change

from hive.supervisor.watch import SourceFilter, Sources, Watcher


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    for name in [
        "app.py",
        "pkg/__init__.py",
        "pkg/views.py",
        "pkg/templates/page.html",
        "pkg/templates/mail.j2",
        "pkg/static/site.css",
        "pkg/__pycache__/views.cpython-311.pyc",
        "venv/lib/python3.11/site-packages/flask/app.py",
        ".venv/lib/x.py",
        ".git/hooks/pre-commit.py",
        "node_modules/a/b.py",
        "vendor/site-packages/c.py",
        "notes.txt",
        "hive.toml",
    ]:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    (root / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    return root


def test_sources_and_templates_of_the_app_are_watched(project: Path) -> None:
    watched = SourceFilter(Sources.of(str(project), [], str(project / "hive.toml")))
    yes = ["app.py", "pkg/views.py", "pkg/templates/page.html", "pkg/templates/mail.j2"]
    no = [
        "pkg/static/site.css",  # static files are read from disk on each request
        "pkg/__pycache__/views.cpython-311.pyc",
        "venv/lib/python3.11/site-packages/flask/app.py",  # a virtualenv (pyvenv.cfg)
        ".venv/lib/x.py",
        ".git/hooks/pre-commit.py",
        "node_modules/a/b.py",
        "vendor/site-packages/c.py",
        "notes.txt",
    ]
    for name in [*yes, "hive.toml"]:
        assert watched(Change.modified, str(project / name)), name
    for name in no:
        assert not watched(Change.modified, str(project / name)), name
    assert not watched(Change.modified, "/elsewhere/app.py")


def test_the_running_pythons_prefix_is_not_watched(tmp_path: Path) -> None:
    prefix = os.path.realpath(sys.prefix)
    watched = SourceFilter(Sources((prefix,)))
    assert not watched(Change.modified, os.path.join(prefix, "lib", "x.py"))


def test_reload_dirs_replace_the_app_dir_and_files_outside_add_their_dir(
    tmp_path: Path,
) -> None:
    sources = Sources.of(str(tmp_path / "app"), [str(tmp_path / "a"), "b"], "/etc/hive/hive.toml")
    assert sources.roots == (str(tmp_path / "a"), os.path.abspath("b"))
    assert sources.files == ("/etc/hive/hive.toml",)
    assert sources.watched_dirs() == [*sources.roots, "/etc/hive"]
    inside = Sources.of(str(tmp_path), [], str(tmp_path / "hive.toml"))
    assert inside.watched_dirs() == [str(tmp_path)]


def test_the_supervisor_reads_batches_of_changes_from_the_pipe() -> None:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    watcher = Watcher(0, read_fd)
    try:
        assert watcher.read() == []
        line = json.dumps(["/p/a.py", "/p/b.py"]).encode()
        os.write(write_fd, line + b"\n" + line[:5])  # a batch, and the start of another
        assert watcher.read() == [["/p/a.py", "/p/b.py"]]
        os.write(write_fd, line[5:] + b"\nnot json\n")
        assert watcher.read() == [["/p/a.py", "/p/b.py"]]
        os.close(write_fd)
        assert watcher.read() is None
    finally:
        os.close(read_fd)
