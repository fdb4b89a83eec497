"""The command line, ``python -m dip``: one subcommand per task plus the lab's tools (see ``dip.cli.commands``)."""

from dip.cli.commands import main

__all__ = ["main"]
