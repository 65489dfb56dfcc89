from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hive._loader import LoadError, load_target, resolve_site


class App:
    """Writes throwaway modules with unique names into a directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.prefix = f"hive_test_{uuid.uuid4().hex[:12]}"

    def module(self, source: str, *, suffix: str = "app") -> str:
        name = f"{self.prefix}_{suffix}"
        (self.directory / f"{name}.py").write_text(textwrap.dedent(source).lstrip("\n"))
        return name

    def package(self, modules: dict[str, str]) -> str:
        name = f"{self.prefix}_pkg"
        package = self.directory / name
        package.mkdir()
        for module, source in modules.items():
            (package / f"{module}.py").write_text(textwrap.dedent(source).lstrip("\n"))
        return name

    def load(self, spec: str) -> object:
        return load_target(spec, app_dir=str(self.directory))


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    helper = App(tmp_path)
    path_before = list(sys.path)
    yield helper
    sys.path[:] = path_before
    for name in [name for name in sys.modules if name.startswith(helper.prefix)]:
        del sys.modules[name]


def load_error(app: App, spec: str) -> str:
    with pytest.raises(LoadError) as info:
        app.load(spec)
    message = str(info.value)
    assert "\n" not in message
    return message


# -- load_target ----------------------------------------------------------------------------


def test_loads_an_attribute(app: App) -> None:
    name = app.module("root = ['the root']\n")
    assert app.load(f"{name}:root") == ["the root"]


def test_loads_a_dotted_attribute(app: App) -> None:
    name = app.module(
        """
        class factory:
            root = 42
        """
    )
    assert app.load(f"{name}:factory.root") == 42


def test_loads_from_a_package(app: App) -> None:
    package = app.package({"__init__": "", "site": "root = 'in a package'\n"})
    assert app.load(f"{package}.site:root") == "in a package"


def test_app_dir_goes_first_on_sys_path_once(app: App) -> None:
    name = app.module("root = 1\n")
    app.load(f"{name}:root")
    assert sys.path[0] == str(app.directory)
    app.load(f"{name}:root")
    assert sys.path.count(str(app.directory)) == 1


def test_app_dir_defaults_to_the_current_directory(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = app.module("root = 'from cwd'\n")
    monkeypatch.chdir(app.directory)
    assert load_target(f"{name}:root") == "from cwd"
    assert sys.path[0] == str(app.directory)


@pytest.mark.parametrize(
    "spec", ["", "nocolon", "mod:", ":attr", "a b:c", "mod:f()", "mod:a:b", ".rel:x", "m:a..b"]
)
def test_bad_spec(app: App, spec: str) -> None:
    assert load_error(app, spec) == f"expected module:attribute, got {spec!r}"


def test_missing_module(app: App) -> None:
    name = f"{app.prefix}_missing"
    assert load_error(app, f"{name}:root") == (
        f"cannot import module {name!r}: No module named {name!r}"
    )


def test_missing_module_in_a_package(app: App) -> None:
    package = app.package({"__init__": ""})
    assert load_error(app, f"{package}.nope:root") == (
        f"cannot import module '{package}.nope': No module named '{package}.nope'"
    )


def test_missing_import_inside_the_app(app: App) -> None:
    missing = f"{app.prefix}_bar"
    name = app.module(
        f"""
        import os

        import {missing}
        """
    )
    assert load_error(app, f"{name}:root") == (
        f"error while importing {name!r}: ModuleNotFoundError: No module named {missing!r} "
        f"({name}.py:3)"
    )


def test_missing_import_inside_a_package_module(app: App) -> None:
    missing = f"{app.prefix}_bar"
    package = app.package({"__init__": "", "site": f"x = 1\nimport {missing}\n"})
    assert load_error(app, f"{package}.site:root") == (
        f"error while importing '{package}.site': ModuleNotFoundError: "
        f"No module named {missing!r} ({package}/site.py:2)"
    )


def test_import_error_inside_the_app(app: App) -> None:
    name = app.module("from os import no_such_name\n")
    message = load_error(app, f"{name}:root")
    assert message.startswith(
        f"error while importing {name!r}: ImportError: cannot import name 'no_such_name'"
    )
    assert message.endswith(f"({name}.py:1)")


def test_exception_while_importing(app: App) -> None:
    name = app.module(
        """
        import json


        def setup():
            raise ValueError("boom")

        setup()
        """
    )
    assert load_error(app, f"{name}:root") == (
        f"an exception was raised while importing {name!r}: ValueError: boom ({name}.py:5)"
    )


def test_exception_in_the_standard_library_points_at_the_app(app: App) -> None:
    name = app.module("import json\nconfig = json.loads('{')\n")
    message = load_error(app, f"{name}:root")
    assert message.startswith(
        f"an exception was raised while importing {name!r}: JSONDecodeError: Expecting"
    )
    assert message.endswith(f"({name}.py:2)")


def test_exception_in_a_helper_module_points_at_the_helper(app: App) -> None:
    helper = app.module("x = 1\nraise RuntimeError('in helper')\n", suffix="helper")
    name = app.module(f"import {helper}\n")
    assert load_error(app, f"{name}:root") == (
        f"an exception was raised while importing {name!r}: RuntimeError: in helper ({helper}.py:2)"
    )


def test_multi_line_exception_message_is_cut(app: App) -> None:
    name = app.module("raise ValueError('first\\nsecond')\n")
    assert load_error(app, f"{name}:root") == (
        f"an exception was raised while importing {name!r}: ValueError: first ... ({name}.py:1)"
    )


def test_system_exit_while_importing(app: App) -> None:
    name = app.module("import sys\nsys.exit(2)\n")
    assert load_error(app, f"{name}:root") == (
        f"an exception was raised while importing {name!r}: SystemExit: 2 ({name}.py:2)"
    )


def test_syntax_error(app: App) -> None:
    name = app.module("x = 1\ny = = 2\n")
    assert load_error(app, f"{name}:root") == (
        f"syntax error while importing {name!r}: invalid syntax ({name}.py:2)"
    )


def test_indentation_error(app: App) -> None:
    name = app.module("if True:\npass\n")
    assert load_error(app, f"{name}:root") == (
        f"syntax error while importing {name!r}: "
        f"expected an indented block after 'if' statement on line 1 ({name}.py:2)"
    )


def test_missing_attribute(app: App) -> None:
    name = app.module("root = 1\n")
    assert load_error(app, f"{name}:nope") == f"module {name!r} has no attribute 'nope'"


def test_missing_dotted_attribute(app: App) -> None:
    name = app.module("class factory:\n    pass\n")
    assert load_error(app, f"{name}:factory.nope") == (f"'{name}:factory' has no attribute 'nope'")


def test_exception_while_looking_up_an_attribute(app: App) -> None:
    name = app.module(
        """
        def __getattr__(attribute):
            raise KeyError(attribute)
        """
    )
    assert load_error(app, f"{name}:root") == (
        f"an exception was raised while looking up 'root' on module {name!r}: "
        f"KeyError: 'root' ({name}.py:2)"
    )


# -- resolve_site ---------------------------------------------------------------------------


class FakeResource:
    def render(self, request: object) -> bytes:
        return b""

    def getChildWithDefault(self, path: bytes, request: object) -> FakeResource:
        return self


class FakeSite:
    def __init__(self, resource: object) -> None:
        self.resource = resource


class DuckResource:
    def render(self, request: object) -> bytes:
        return b""

    def getChildWithDefault(self, path: bytes, request: object) -> DuckResource:
        return self


def resolve(obj: object, spec: str | None = "app:root") -> FakeSite:
    return resolve_site(
        obj, site_type=FakeSite, resource_type=FakeResource, make_site=FakeSite, spec=spec
    )


def resolve_error(obj: object, spec: str | None = "app:root") -> str:
    with pytest.raises(LoadError) as info:
        resolve(obj, spec)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_a_site_is_served_as_is() -> None:
    site = FakeSite(FakeResource())
    assert resolve(site) is site


def test_a_resource_is_wrapped_in_a_site() -> None:
    root = FakeResource()
    site = resolve(root)
    assert isinstance(site, FakeSite)
    assert site.resource is root


def test_a_duck_typed_resource_is_wrapped() -> None:
    root = DuckResource()
    assert resolve(root).resource is root


def test_a_factory_is_called_once() -> None:
    calls: list[FakeResource] = []

    def make_root() -> FakeResource:
        calls.append(FakeResource())
        return calls[-1]

    site = resolve(make_root)
    assert len(calls) == 1
    assert site.resource is calls[0]


def test_a_factory_may_return_a_site() -> None:
    site = FakeSite(FakeResource())
    assert resolve(lambda: site) is site


def test_a_resource_class_is_instantiated() -> None:
    site = resolve(DuckResource)
    assert isinstance(site.resource, DuckResource)


def test_factories_are_not_called_twice() -> None:
    def outer() -> Any:
        return FakeResource

    assert resolve_error(outer) == (
        "'app:root' returned the class FakeResource, not a Site or a Resource"
    )

    def returns_function() -> Any:
        return outer

    assert resolve_error(returns_function) == (
        "'app:root' returned a function, not a Site or a Resource"
    )


@pytest.mark.parametrize(
    ("obj", "kind"),
    [(1, "an int"), ("text", "a str"), (None, "None"), ([FakeResource()], "a list")],
)
def test_not_servable(obj: object, kind: str) -> None:
    assert resolve_error(obj) == (
        f"'app:root' is {kind}, not a Site, a Resource or a callable returning one"
    )


def test_without_a_spec_the_object_is_named_generically() -> None:
    assert resolve_error(3, spec=None).startswith("the application object is an int, ")


def test_factory_returning_nothing() -> None:
    assert resolve_error(lambda: None) == "'app:root' returned None, not a Site or a Resource"


def test_exception_in_a_factory(app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    name = app.module(
        """
        def make_root():
            settings = {}
            return settings["port"]
        """
    )
    monkeypatch.chdir(app.directory)
    factory = app.load(f"{name}:make_root")
    assert resolve_error(factory, spec=f"{name}:make_root") == (
        f"an exception was raised while calling '{name}:make_root': KeyError: 'port' ({name}.py:3)"
    )


def test_factory_needing_arguments() -> None:
    def make_root(config: object) -> FakeResource:
        return FakeResource()

    message = resolve_error(make_root)
    assert message.startswith("an exception was raised while calling 'app:root': TypeError: ")
    assert "missing 1 required positional argument" in message


def test_async_factory_is_refused_without_being_called() -> None:
    async def make_root() -> FakeResource:
        raise AssertionError("must not run")

    assert resolve_error(make_root) == (
        "'app:root' is an async function; a factory must return its result"
    )


def test_coroutine_returned_by_a_factory_is_closed() -> None:
    async def build() -> FakeResource:
        return FakeResource()

    # Warnings are errors here: an unclosed coroutine would fail the test.
    assert resolve_error(lambda: build()) == (
        "'app:root' returned a coroutine, not a Site or a Resource"
    )
