"""``flask guard ...``: the operator verbs (:mod:`backend_guard.operate`) on a Flask app's own parts.

The Flask extension registers the command on ``app.cli``; it takes the same verbs and options as the
``backend-guard`` command (without ``--store``: the app's own store).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._stack import StackParts
from ..operate._cli import OperateFailed, run_in_app

__all__ = ["guard_command"]


def guard_command(app_parts: Callable[[], StackParts]) -> Any:
    """The ``guard`` click command, running on ``app_parts()`` (the current app's parts) when invoked.

    Example::

        app.cli.add_command(guard_command(backend_guard.flask.parts))
    """
    import click
    from flask.cli import with_appcontext

    @click.command(
        "guard",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        add_help_option=False,
        help="See and undo what backend_guard decided: locks list|unlock, limits show|reset, tokens list|revoke.",
    )
    @click.argument("argv", nargs=-1, type=click.UNPROCESSED)
    @with_appcontext
    def guard(argv: tuple[str, ...]) -> None:
        try:
            text = run_in_app(list(argv), "flask guard", app_parts)
        except OperateFailed as exc:
            if exc.status == 2:
                raise click.UsageError(exc.message) from None
            raise click.ClickException(exc.message) from None
        click.echo(text, nl=False)

    return guard
