"""Arguments from the page, checked against an exposed method's annotations.

What a page sends is JSON, so the types a parameter may have are JSON's: ``str``,
``int`` (not a bool), ``float`` (an int is taken and made a float), ``bool``, ``None``,
``list[X]``, ``tuple[X, ...]`` and ``tuple[X, Y]`` (arrays, made tuples), ``dict[str, X]``,
unions (``X | None``), ``Literal[...]``, and ``Any`` / ``object`` / no annotation for any
JSON value. Nothing is coerced ("3" is no int). Any other annotation is a TypeError when
the class is made, so a method the page cannot call correctly is caught before it runs.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

__all__ = ["ArgumentError", "Parameters", "parameters_of"]


class ArgumentError(ValueError):
    """Arguments that do not fit the method; the message says how, for the page."""


Check = Callable[[Any, str], Any]  # value, where -> the value to pass; ArgumentError


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _fail(where: str, wanted: str, value: Any) -> ArgumentError:
    return ArgumentError(f"{where} must be {wanted}, got {_kind(value)}")


def _any(value: Any, where: str) -> Any:
    return value


def _scalar(kind: type, wanted: str) -> Check:
    def check(value: Any, where: str) -> Any:
        if type(value) is kind:
            return value
        raise _fail(where, wanted, value)

    return check


def _float(value: Any, where: str) -> Any:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise _fail(where, "a number", value)


def _none(value: Any, where: str) -> Any:
    if value is None:
        return None
    raise _fail(where, "null", value)


def checker(annotation: Any, owner: str) -> Check:
    """The check for ``annotation``; TypeError if it is no JSON type."""
    if annotation in (Any, object, inspect.Parameter.empty):
        return _any
    if annotation is None or annotation is type(None):
        return _none
    if annotation is str:
        return _scalar(str, "a string")
    if annotation is bool:
        return _scalar(bool, "a boolean")
    if annotation is int:
        return _scalar(int, "an integer")
    if annotation is float:
        return _float
    if annotation in (list, tuple, dict):
        return checker(annotation[Any, ...] if annotation is tuple else annotation[Any], owner)
    origin = typing.get_origin(annotation)
    params = typing.get_args(annotation)
    if origin is Union or origin is types.UnionType:
        options = [checker(option, owner) for option in params]
        names = " or ".join(_describe(option) for option in params)

        def one_of(value: Any, where: str) -> Any:
            for option in options:
                try:
                    return option(value, where)
                except ArgumentError:
                    continue
            raise _fail(where, names, value)

        return one_of
    if origin is Literal:
        allowed = params

        def literal(value: Any, where: str) -> Any:
            for option in allowed:
                if value == option and type(value) is type(option):
                    return value
            raise ArgumentError(f"{where} must be one of {', '.join(map(repr, allowed))}")

        return literal
    if origin in (list, Sequence):
        item = checker(params[0] if params else Any, owner)

        def array(value: Any, where: str) -> Any:
            if type(value) is not list:
                raise _fail(where, "an array", value)
            return [item(v, f"{where}[{i}]") for i, v in enumerate(value)]

        return array
    if origin is tuple:
        if len(params) == 2 and params[1] is Ellipsis:
            each = checker(params[0], owner)

            def rest(value: Any, where: str) -> Any:
                if type(value) is not list:
                    raise _fail(where, "an array", value)
                return tuple(each(v, f"{where}[{i}]") for i, v in enumerate(value))

            return rest
        fixed = [checker(p, owner) for p in params]

        def pair(value: Any, where: str) -> Any:
            if type(value) is not list or len(value) != len(fixed):
                raise _fail(where, f"an array of {len(fixed)}", value)
            items = enumerate(zip(fixed, value, strict=True))
            return tuple(check(v, f"{where}[{i}]") for i, (check, v) in items)

        return pair
    if origin in (dict, Mapping):
        if params and params[0] is not str:
            raise TypeError(f"{owner}: JSON object keys are strings, not {params[0]!r}")
        value_check = checker(params[1] if params else Any, owner)

        def mapping(value: Any, where: str) -> Any:
            if type(value) is not dict:
                raise _fail(where, "an object", value)
            return {k: value_check(v, f"{where}[{k!r}]") for k, v in value.items()}

        return mapping
    raise TypeError(f"{owner}: {annotation!r} is not a JSON type the page can send")


def _describe(annotation: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}
    if annotation is None or annotation is type(None):
        return "null"
    return names.get(annotation, getattr(annotation, "__name__", repr(annotation)))


@dataclass(frozen=True, slots=True)
class _Param:
    name: str
    kind: inspect._ParameterKind
    check: Check
    required: bool


class Parameters:
    """An exposed method's parameters (``self`` left out), to bind what the page sent."""

    def __init__(self, function: Callable[..., Any], owner: str) -> None:
        self.name = owner
        hints = typing.get_type_hints(function)
        signature = inspect.signature(function)
        params = list(signature.parameters.values())[1:]  # self
        self._params = [
            _Param(
                p.name,
                p.kind,
                checker(hints.get(p.name, inspect.Parameter.empty), f"{owner}({p.name})"),
                p.default is inspect.Parameter.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD),
            )
            for p in params
        ]

    def bind(self, args: list[Any], kwargs: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """The arguments to call with, checked; ArgumentError if they do not fit."""
        name = self.name
        out_args: list[Any] = []
        out_kwargs: dict[str, Any] = {}
        positional = list(args)
        named = dict(kwargs)
        for param in self._params:
            where = f"{name}(): {param.name!r}"
            if param.kind is inspect.Parameter.VAR_POSITIONAL:
                out_args += [param.check(v, where) for v in positional]
                positional = []
                continue
            if param.kind is inspect.Parameter.VAR_KEYWORD:
                for key in list(named):
                    out_kwargs[key] = param.check(named.pop(key), f"{name}(): {key!r}")
                continue
            takes_position = param.kind is not inspect.Parameter.KEYWORD_ONLY
            if takes_position and positional:
                if param.name in named:
                    raise ArgumentError(f"{name}() got {param.name!r} twice")
                value = param.check(positional.pop(0), where)
                if param.kind is inspect.Parameter.POSITIONAL_ONLY or not out_kwargs:
                    out_args.append(value)
                else:
                    out_kwargs[param.name] = value
            elif param.name in named and param.kind is not inspect.Parameter.POSITIONAL_ONLY:
                out_kwargs[param.name] = param.check(named.pop(param.name), where)
            elif param.required:
                raise ArgumentError(f"{name}() is missing {param.name!r}")
        if positional:
            count = sum(1 for p in self._params if p.kind in _POSITIONAL)
            raise ArgumentError(
                f"{name}() takes {count} positional argument{'s' * (count != 1)}, got {len(args)}"
            )
        if named:
            raise ArgumentError(f"{name}() has no parameter {sorted(named)[0]!r}")
        return out_args, out_kwargs


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def parameters_of(function: Callable[..., Any], owner: str) -> Parameters:
    """``function``'s Parameters, made once and kept on it."""
    made: Parameters | None = getattr(function, "_hive_live_parameters", None)
    if made is None:
        made = Parameters(function, owner)
        function._hive_live_parameters = made  # type: ignore[attr-defined]
    return made
