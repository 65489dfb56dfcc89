"""Authentication with Twisted Cred's names: ``twisted.cred.X`` ports to ``hive.cred.X``.

- `hive.cred.portal`: ``Portal``, ``IRealm``;
- `hive.cred.checkers`: ``ICredentialsChecker``, ``InMemoryUsernamePasswordDatabaseDontUse``,
  ``FilePasswordDB``, ``AllowAnonymousAccess``, ``ANONYMOUS``, and beyond Twisted
  ``HashedPasswordDB`` (argon2id and bcrypt, verified in threads);
- `hive.cred.credentials`: the credential interfaces and classes, Digest's included;
- `hive.cred.error`: ``UnauthorizedLogin``, ``UnhandledCredentials``, ``LoginFailed``,
  ``LoginDenied``.

`hive.guard` puts a portal in front of a resource tree (HTTP Basic and Digest).
"""
