"""The argument parser of the ``backend-guard`` command and of its verbs in ``manage.py guard`` and ``flask guard``.

Every option must have help text, subcommands can be walked, and a usage error is one line and exit status 2.
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

__all__ = ["CommandParser", "printable"]


def printable(text: str) -> str:
    """``text`` as a terminal may show it: each character that is not printable (an escape sequence's ESC, a
    newline, a direction override) as ``?``, so no text from a client, a server or an argument can forge a line
    or rewrite the screen.

    Example::

        printable("ok\\x1b[2J")   # 'ok?[2J'
    """
    return "".join(ch if ch.isprintable() else "?" for ch in text)


class CommandParser(argparse.ArgumentParser):
    """``argparse`` for the ``backend-guard`` command: a usage error is one line on stderr and exit status 2.

    Every option must have help text; ``options`` lists the options of this (sub)command and ``commands`` its
    subcommands, so both can be walked.

    Example::

        parser = build_parser()
        options = {name: [a.option_strings for a in command.options] for name, command in parser.commands.items()}
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.options: list[argparse.Action] = []
        self.commands: dict[str, CommandParser] = {}
        super().__init__(*args, **kwargs)

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action:
        """Add an option (``help`` is required), as ``argparse.ArgumentParser.add_argument``."""
        if not kwargs.get("help"):
            raise TypeError(f"backend-guard option {args!r} needs help text")
        action = super().add_argument(*args, **kwargs)
        self.options.append(action)
        return action

    def command(self, subparsers: Any, name: str, help: str, description: str = "") -> CommandParser:  # noqa: A002
        """Add the subcommand ``name`` (a :class:`CommandParser`) through ``subparsers``."""
        parser: CommandParser = subparsers.add_parser(name, help=help, description=description or help)
        self.commands[name] = parser
        return parser

    def error(self, message: str) -> NoReturn:
        """Print one line, ``PROG: error: MESSAGE (see PROG --help)``, to stderr and exit with status 2; a character
        that is not printable (an escape sequence's ESC in an argument the message quotes) is shown as ``?``."""
        line = printable(" ".join(message.split()))
        self.exit(2, f"{self.prog}: error: {line} (see {self.prog} --help)\n")
