"""The ``sld`` command line.

Run ``sld --help`` for the commands; ``discover`` is a shortcut for ``sld discover``.
Results go to stdout, progress and logs to stderr. Domain errors print one line and exit 1.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from sld import __version__
from sld.errors import DOMAIN_ERRORS


class _DomainErrorGroup(click.Group):
    """A click group that turns domain errors into one-line messages and exit code 1."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except DOMAIN_ERRORS as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(1)


@click.group(cls=_DomainErrorGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sld")
def main() -> None:
    """Discover scaling laws: propose forms, fit constants, choose by extrapolation."""


def _register_commands() -> None:
    # Each command module defines one click command or group; imported here so `sld --help` lists them all.
    from sld.commands import bench, corpus, discover, fit, tasks

    for module in (tasks, corpus, fit, discover, bench):
        main.add_command(module.command)


_register_commands()


def discover_main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``discover`` console script: the same as ``sld discover``."""
    args = list(sys.argv[1:] if argv is None else argv)
    main.main(args=["discover", *args], prog_name="discover")
