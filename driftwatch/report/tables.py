"""Terminal and log tables: rich tables in one plain style.

``render`` gives plain text (no colour, no wrapping, ASCII rules), the same in a terminal, a
log file, the Prefect UI's log view and a test's captured output; ``echo`` prints a table to
stdout, with rich's colours only when stdout is a terminal.
"""

from __future__ import annotations

import io
import sys
from typing import Any

from rich.box import Box
from rich.console import Console
from rich.table import Table

# Columns separated by spaces, a dashed rule under the header: what the hand-padded tables
# printed before, and safe in any log encoding.
PLAIN = Box("    \n    \n -- \n    \n    \n -- \n    \n    \n", ascii=True)


def table(*columns: str, title: str | None = None, right: tuple[str, ...] = ()) -> Table:
    """A table in the plain style; columns named in ``right`` are right-aligned (numbers)."""
    t = Table(
        title=title,
        box=PLAIN,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1),
        title_justify="left",
        title_style=None,
        header_style="bold",
        collapse_padding=True,
    )
    for name in columns:
        t.add_column(name, justify="right" if name in right else "left", no_wrap=True)
    return t


def render(t: Table) -> str:
    """Plain text: no colour, never wrapped, no trailing spaces."""
    out = io.StringIO()
    console = Console(
        file=out,
        width=100_000,
        color_system=None,
        force_terminal=False,
        highlight=False,
        markup=False,  # a column named "x[1]" is a name, not rich markup
        emoji=False,
    )
    console.print(t)
    return "\n".join(line.rstrip() for line in out.getvalue().splitlines())


def echo(t: Table, **print_kwargs: Any) -> None:
    """Print to stdout: rich's styling on a terminal, the plain rendering otherwise."""
    if sys.stdout.isatty():
        Console(highlight=False, markup=False, emoji=False).print(t)
    else:
        print(render(t), **print_kwargs)
