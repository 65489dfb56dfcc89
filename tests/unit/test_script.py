"""hive.script: .rpy resource scripts and .epy pages, and static.File's processors."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hive import script
from hive.resource import Resource
from hive.static import File, Registry
from tests.unit.harness import Harness

CLOCK = """
from hive.resource import Resource

RUNS.append(1)

class Page(Resource):
    isLeaf = True
    def render_GET(self, request):
        return b"page %d %s" % (len(RUNS), registry.getComponent("name", b"-"))

resource = Page()
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "page.rpy").write_text("RUNS = []\n" + CLOCK)
    (tmp_path / "cached.rpy").write_text("cache()\nRUNS = []\n" + CLOCK)
    (tmp_path / "none.rpy").write_text("x = 1\n")
    (tmp_path / "broken.rpy").write_text("raise ValueError('in the script')\n")
    (tmp_path / "hello.epy").write_text("request.write(b'epy says ' + request.uri)\n")
    (tmp_path / "boom.epy").write_text("request.write(b'<before>')\n1 / 0\n")
    (tmp_path / "run.cgi").write_text("#!/bin/sh\necho secret\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "index.rpy").write_text("RUNS = []\n" + CLOCK)
    return tmp_path


def scripted(tree: Path) -> File:
    root = File(tree)
    root.processors = {".rpy": script.ResourceScript, ".epy": script.PythonScript}
    return root


def test_an_rpy_runs_for_every_request_unless_cached(tree: Path) -> None:
    root = scripted(tree)
    harness = Harness(root)
    assert [harness.get("/page.rpy").body for _ in range(2)] == [b"page 1 -", b"page 1 -"]
    # cache(): the first run's resource is kept; its module state goes on.
    assert [harness.get("/cached.rpy").body for _ in range(2)] == [b"page 1 -", b"page 1 -"]
    assert root.registry.getCachedPath(str(tree / "cached.rpy")) is not None
    assert root.registry.getCachedPath(str(tree / "page.rpy")) is None


def test_the_registry_is_the_scripts(tree: Path) -> None:
    root = scripted(tree)
    root.registry.setComponent("name", b"ada")
    assert Harness(root).get("/page.rpy").body == b"page 1 ada"


def test_a_script_without_resource_or_raising(tree: Path, caplog: pytest.LogCaptureFixture) -> None:
    harness = Harness(scripted(tree))
    missing = harness.get("/none.rpy")
    assert missing.status == 500 and b'assign to the variable "resource"' in missing.body
    broken = harness.get("/broken.rpy")
    assert broken.status == 500 and b"in the script" not in broken.body
    assert "in the script" in caplog.text


def test_index_rpy_is_the_index_when_rpy_runs(tree: Path) -> None:
    assert Harness(scripted(tree)).get("/sub/").body == b"page 1 -"
    listing = Harness(File(tree)).get("/sub/")
    assert listing.status == 200 and b"index.rpy" in listing.body  # listed, not run


def test_scripts_are_never_served_as_files_without_a_processor(tree: Path) -> None:
    plain = Harness(File(tree))
    for name in ("page.rpy", "hello.epy", "run.cgi"):
        response = plain.get("/" + name)
        assert response.status == 404 and b"secret" not in response.body, name


def test_epy_writes_its_page_and_shows_its_error(tree: Path) -> None:
    harness = Harness(scripted(tree))
    assert harness.get("/hello.epy?q").body == b"epy says /hello.epy?q"
    boom = harness.get("/boom.epy")
    assert boom.body.startswith(b"<before><pre>Traceback") and b"ZeroDivisionError" in boom.body


def test_resource_script_wrapper_and_directory(tree: Path) -> None:
    parent = Resource()
    parent.putChild(b"w", script.ResourceScriptWrapper(str(tree / "page.rpy")))
    assert Harness(parent).get("/w").body == b"page 1 -"
    directory = script.ResourceScriptDirectory(str(tree))
    harness = Harness(directory)
    assert harness.get("/page.rpy").body == b"page 1 -"
    assert harness.get("/sub/index.rpy").body == b"page 1 -"
    for escape in ("/..", "/sub/..", "/%2e%2e/etc", "/nothing"):
        assert harness.get(escape).status == 404, escape


def test_resource_template_runs_twisted_s_simple_rtl(tmp_path: Path) -> None:
    program = Path(__file__).parents[1] / "integration" / "tutorial" / "simple.rtl"
    shutil.copy(program, tmp_path / "simple.rtl")
    root = File(tmp_path)
    root.processors = {".rtl": script.ResourceTemplate}
    response = Harness(root).get("/simple.rtl")
    assert response.status == 200
    assert response.body.startswith(b"<HTML>\n    <HEAD><TITLE> Welcome To Twisted Python")


def test_resource_template_without_quixote_says_so(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "quixote.ptl", None)
    monkeypatch.setitem(sys.modules, "quixote", None)
    (tree / "t.rtl").write_text("resource = None\n")
    with pytest.raises(RuntimeError, match="Quixote"):
        script.ResourceTemplate(str(tree / "t.rtl"), Registry())
