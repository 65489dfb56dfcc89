"""A TCP chat server with a live web control panel embedded: ``python -m examples.chat``."""
