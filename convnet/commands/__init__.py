"""Subcommands of the ``convnet`` CLI (one module each, see convnet/cli.py)."""
