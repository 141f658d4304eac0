"""Subcommands of the ``nanocrystal`` CLI: one module each, with ``register(subparsers)``."""
