"""Cred's errors, with ``twisted.cred.error``'s names and hierarchy."""

from __future__ import annotations

__all__ = [
    "LoginDenied",
    "LoginFailed",
    "Unauthorized",
    "UnauthorizedLogin",
    "UnhandledCredentials",
]


class Unauthorized(Exception):
    """Standard unauthorized error."""


class LoginFailed(Exception):
    """The login failed: the credentials could not be read, checked or accepted."""


class UnauthorizedLogin(LoginFailed, Unauthorized):
    """The credentials are wrong (unknown user, wrong password)."""


class UnhandledCredentials(LoginFailed):
    """No checker of the portal takes credentials of this kind: a configuration error
    (an HTTP guard answers it with a challenge, as for a wrong password)."""


class LoginDenied(LoginFailed):
    """The realm refused a user whose credentials were right (a quota, a locked account)."""
