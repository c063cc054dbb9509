"""``manage.py guard locks list|unlock``, ``guard limits show|reset``, ``guard tokens list|revoke``.

The same verbs and options as the ``backend-guard`` command (without ``--store``: the app's own, from
``settings.BACKEND_GUARD``), run on ``backend_guard.django.parts()``. A failure is a ``CommandError`` (one line).

Example::

    python manage.py guard locks list --account alice
    python manage.py guard locks unlock --account alice --by jane
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ...django import parts
from ...operate._cli import OperateFailed, reader_left, run_in_app

__all__ = ["Command"]


class Command(BaseCommand):  # type: ignore[misc]
    """The ``guard`` management command: ``guard GROUP VERB [options]`` (``guard locks --help`` for a group's).

    Example::

        call_command("guard", "locks", "unlock", "--account", "alice", "--by", "jane")
    """

    help = "See and undo what backend_guard decided: locks list|unlock, limits show|reset, tokens list|revoke."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("argv", nargs=argparse.REMAINDER, help="GROUP VERB [options], as backend-guard takes")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            text = run_in_app(list(options["argv"]), "manage.py guard", parts)
        except OperateFailed as exc:
            raise CommandError(exc.message, returncode=exc.status) from None
        try:
            self.stdout.write(text, ending="")
            self.stdout.flush()
        except BrokenPipeError:  # the reader left (``| head``): status 1, and no traceback
            reader_left()
            raise SystemExit(1) from None
