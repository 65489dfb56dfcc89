"""Exceptions of the resource model, with the names of ``twisted.web.error``."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["Error", "UnsupportedMethod"]


class Error(Exception):
    """An HTTP error a resource may raise: ``code`` is the status to answer."""

    def __init__(self, code: int, message: bytes | None = None, response: bytes | None = None):
        super().__init__(code, message, response)
        self.status = code
        self.message = message
        self.response = response

    def __str__(self) -> str:
        message = self.message.decode("latin-1") if self.message else ""
        return f"{self.status} {message}".strip()


class UnsupportedMethod(Exception):
    """The resource does not render the request's method; the server answers 405."""

    def __init__(self, allowedMethods: Sequence[bytes], *args: object) -> None:
        super().__init__(allowedMethods, *args)
        self.allowedMethods = list(allowedMethods)

    def __str__(self) -> str:
        allowed = b", ".join(self.allowedMethods).decode("ascii", "replace")
        return f"expected one of {allowed}"
