"""The ``hive`` command: ``hive run``, ``list``, ``status``, ``reload``, ``stop``, ``scale``.

`hive.cli.commands` holds the click commands (the only module that imports click);
`hive.cli.status` formats what ``hive status`` prints.
"""

from hive.cli.commands import main

__all__ = ["main"]
