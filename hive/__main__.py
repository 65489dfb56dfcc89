"""``python -m hive``: the same as the ``hive`` command."""

from hive.cli import main

main()
