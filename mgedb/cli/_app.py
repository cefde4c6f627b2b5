"""The Typer application object and the one place where :class:`MgedbError` becomes an exit code."""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from mgedb.errors import MgedbError


class _Group(TyperGroup):
    """Turns every :class:`MgedbError` into ``Error: …`` on stderr and its exit code (2)."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except MgedbError as e:
            typer.echo(f"Error: {e}", err=True)
            raise typer.Exit(e.exit_code) from None


app = typer.Typer(
    cls=_Group,
    help="mgedb: multipartite graph encodings of sparse networks, their topometrics, in a "
         "graph DB.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
