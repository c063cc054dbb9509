"""The operator verbs as commands: ``locks list|unlock``, ``limits show|reset``, ``tokens list|revoke``.

One front end for three programs: the ``backend-guard`` command (:func:`add_commands`, on the store of
``--store`` or of the app's ``BACKEND_GUARD_*`` settings), Django's ``manage.py guard`` and Flask's ``flask guard``
(:func:`run_argv`, on the app's own parts). A verb prints a few lines (or ``--json``); a refusal is one line and a
non-zero status (:class:`OperateFailed`: 1 when the store is down or there was nothing to undo, 2 for bad input),
never a traceback.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, TextIO

from .._command_parser import CommandParser
from .._stack import StackParts
from ..config import GuardSettings
from ..exceptions import ConfigurationError, StorageError
from ._model import MAX_LIMIT, Page, audit_log, row_dict
from ._operator import Operator

__all__ = ["OperateFailed", "add_commands", "execute", "operate_parser", "run_command", "run_in_app"]

#: The groups and their verbs: (group, help, ((verb, help), ...)).
GROUPS = (
    ("locks", "see and lift account lockout locks", (("list", "list live locks"), ("unlock", "lift locks"))),
    (
        "limits",
        "see and reset a client's rate limit quota",
        (("show", "a client's remaining quota per rule"), ("reset", "forget a client's counters")),
    ),
    (
        "tokens",
        "see and revoke a subject's refresh-token families (logins)",
        (("list", "list a subject's live logins"), ("revoke", "end one login of a subject, or all")),
    ),
)


class OperateFailed(Exception):
    """A verb that could not be done: its one-line ``message`` and the exit ``status``.

    Example::

        raise OperateFailed("the store is unavailable", 1)
    """

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.message = " ".join(message.split())
        self.status = status


def _limit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= MAX_LIMIT:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to {MAX_LIMIT}")
    return value


def _verb_options(verb: Any, group: str, name: str, standalone: bool) -> None:
    """The options of one verb (``standalone``: the ``backend-guard`` command, which also takes ``--store``)."""
    if standalone:
        verb.add_argument("--store", default=None, help="store URL (default: BACKEND_GUARD_STORE, as the app)")
    verb.add_argument("--json", action="store_true", help="print JSON instead of text")
    if name in ("unlock", "reset", "revoke"):
        verb.add_argument("--by", default=None, help="the operator's name, recorded in the audit event")
    _target_options(verb, group, name)
    if name == "list":
        verb.add_argument("--limit", type=_limit, default=100, help=f"rows per page, 1-{MAX_LIMIT} (default: 100)")
        verb.add_argument("--cursor", default=None, help="the cursor a previous page printed, for the next page")


def _target_options(verb: Any, group: str, name: str) -> None:
    if group == "locks":
        verb.add_argument("--account", default=None, help="the account name (as the user types it at login)")
        verb.add_argument("--address", default=None, help="the client address (a pair lock, or address-wide)")
    elif group == "limits":
        verb.add_argument("--address", default=None, help="the client address (the default client key)")
        verb.add_argument("--key", default=None, help="the client key itself, as the rate limiter built it")
    else:
        verb.add_argument("subject", help="the subject (user id, the tokens' sub claim)")
        if name == "revoke":
            verb.add_argument("--family", default=None, help="one family id from a listing (default: every one)")


def add_commands(parser: Any, sub: Any, standalone: bool = True) -> None:
    """Add the three groups to ``parser`` (a ``backend-guard`` :class:`~backend_guard.cli.CommandParser`) through
    its subparsers ``sub``.

    Example::

        add_commands(parser, parser.add_subparsers(dest="command"))
    """
    for group, help_text, verbs in GROUPS:
        command = parser.command(sub, group, help_text)
        verb_sub = command.add_subparsers(
            dest="verb", required=True, metavar="VERB", parser_class=type(parser), help="what to do"
        )
        for name, verb_help in verbs:
            verb = command.command(verb_sub, name, verb_help)
            _verb_options(verb, group, name, standalone)
            verb.set_defaults(parser=verb, group=group)


def operate_parser(prog: str) -> CommandParser:
    """A parser of the operator verbs alone (``locks``, ``limits``, ``tokens``; no ``--store``: the app's own).

    Example::

        args = operate_parser("flask guard").parse_args(["locks", "list"])
    """
    parser = CommandParser(prog=prog, description="see and undo what backend_guard decided")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=CommandParser)
    add_commands(parser, sub, standalone=False)
    return parser


def run_in_app(argv: list[str], prog: str, app_parts: Callable[[], StackParts]) -> str:
    """Run the verb of ``argv`` in an app's process (``manage.py guard``, ``flask guard``) on the operator of
    ``app_parts()``; the output, or :class:`OperateFailed` (a usage error exits with status 2, as argparse does;
    a part the settings cannot build is a refusal too, as the parts are built here).

    Example::

        print(run_in_app(["locks", "list"], "flask guard", lambda: parts), end="")
    """
    args = operate_parser(prog).parse_args(argv)
    _audit_to_stderr()  # an app that set up no logging would drop the record of an unlock or a revoke
    with _refusals():
        parts = app_parts()
        operator = Operator.from_parts(parts)
    if _is_memory(_store_url(args.group, parts.settings, None)):
        print(
            f"{prog} {args.group}: note: the store is memory://, so this reads this process's memory only: a command"
            " line is a process of its own, and what the serving processes counted is not here. Set a shared store"
            " (redis://...) in the settings.",
            file=sys.stderr,
        )
    out = io.StringIO()
    execute(args, out, operator)
    return out.getvalue()


# -- running a verb -----------------------------------------------------------------------------------------------


def _when(seconds: float | None) -> str:
    return "-" if seconds is None else datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _lock_line(row: Any) -> str:
    account = row.account or row.account_id or "(every account)"
    address = row.address or row.address_id or "-"
    return f"{account}  scope={row.scope}  address={address}  until={_when(row.until)}  ({row.retry_after:.0f} s left)"


def _quota_line(row: Any) -> str:
    state = "ok" if row.allowed else "LIMITED"
    left = f"{row.remaining} of {row.limit} per {row.window:g} s left"
    return f"{row.rule}: {left}, {state}, more in {row.reset_after:.0f} s"


def _family_line(row: Any) -> str:
    times = f"created={_when(row.created)}  last_used={_when(row.last_used)}  expires={_when(row.expires)}"
    return f"{row.family}  {times}  device={json.dumps(row.device) if row.device else '-'}"


def _print_page(page: Page[Any], line: Callable[[Any], str], args: argparse.Namespace, out: TextIO) -> None:
    if args.json:
        rows = [row_dict(r) for r in page.items]
        print(json.dumps({"items": rows, "cursor": page.cursor, "truncated": page.truncated}), file=out)
        return
    for row in page.items:
        print(line(row), file=out)
    if not page.items:
        print("(none)", file=out)
    if page.cursor is not None:
        print(f"more: --cursor={page.cursor}", file=out)  # "=": a cursor may start with "-"
    if page.truncated:
        print(_TRUNCATED, file=out)


_TRUNCATED = (
    f"truncated: the store holds more than one listing reads ({MAX_LIMIT} locks, {4 * MAX_LIMIT} keys): "
    "these pages miss some locks, whatever the cursor; list by --account or --address to see them"
)


def _print_done(what: str, count: int, args: argparse.Namespace, out: TextIO) -> None:
    if count == 0:
        raise OperateFailed(f"nothing to {what}: no such {_NOUN[args.group]} in the store", 1)
    if args.json:
        print(json.dumps({"done": what, "count": count}), file=out)
    else:
        print(f"{what}: {count} removed", file=out)


_NOUN = {"locks": "account, pair or address", "limits": "client's counters", "tokens": "live login of that subject"}


def _locks(op: Operator, args: argparse.Namespace, out: TextIO) -> None:
    if args.verb == "list":
        page = op.locks.list(limit=args.limit, cursor=args.cursor, account=args.account, address=args.address)
        _print_page(page, _lock_line, args, out)
    else:
        _print_done("unlock", op.locks.unlock(account=args.account, address=args.address, by=args.by), args, out)


_NO_RULES = (
    "no rate limit rules to show: give the app's own BACKEND_GUARD_RATE_LIMIT__DEFAULT_LIMITS and "
    "BACKEND_GUARD_RATE_LIMIT__RULES (or run `manage.py guard` / `flask guard`); `limits reset` forgets every "
    "counter of the client without them"
)


def _limits(op: Operator, args: argparse.Namespace, out: TextIO) -> None:
    if args.verb == "show":
        if not op.limits.rules:  # nothing to peek at: "(none)" would read as "this client has its whole quota"
            raise OperateFailed(_NO_RULES, 2)
        _print_page(Page(tuple(op.limits.show(address=args.address, key=args.key))), _quota_line, args, out)
    else:
        _print_done("reset", op.limits.reset(address=args.address, key=args.key, by=args.by), args, out)


def _tokens(op: Operator, args: argparse.Namespace, out: TextIO) -> None:
    if args.verb == "list":
        _print_page(op.tokens.list(args.subject, limit=args.limit, cursor=args.cursor), _family_line, args, out)
    else:
        _print_done("revoke", op.tokens.revoke(args.subject, args.family, by=args.by), args, out)


_GROUPS: dict[str, Callable[[Operator, argparse.Namespace, TextIO], None]] = {
    "locks": _locks,
    "limits": _limits,
    "tokens": _tokens,
}


def execute(args: argparse.Namespace, out: TextIO, operator: Operator | None = None) -> None:
    """Run the verb of ``args`` on ``operator`` (default: the app of ``--store`` and ``BACKEND_GUARD_*``);
    raises :class:`OperateFailed` with one line when it cannot.

    Example::

        execute(parser.parse_args(["locks", "list", "--json"]), sys.stdout, Operator.from_parts(parts))
    """
    with _refusals():
        if operator is None:
            settings = GuardSettings.from_env()
            _refuse_a_private_store(args, settings)
            _note_a_missing_secret(args, settings)
            operator = Operator.from_settings(settings, store=args.store)
        _GROUPS[args.group](operator, args, out)


#: The settings section whose own ``store`` a group's state may live on.
_SECTIONS = {"locks": "lockout", "limits": "rate_limit", "tokens": "tokens"}


def _refuse_a_private_store(args: argparse.Namespace, settings: GuardSettings) -> None:
    """Refuse (status 2) to read a memory store from a process of its own: it holds nothing of the app's, and an
    empty answer would read as "nobody is locked"."""
    if _is_memory(_store_url(args.group, settings, args.store)):
        raise OperateFailed(
            "no shared store to read: this command runs in a process of its own, where a memory store holds nothing"
            " of the app's (its state lives in the serving process alone). Give --store redis://... or set"
            " BACKEND_GUARD_STORE as the app does.",
            2,
        )


def _store_url(group: str, settings: GuardSettings, shared: str | None) -> str:
    """The URL of the store a group's verbs read: a section's own store wins over the shared one (``shared``,
    ``--store``, else the settings'), as in the app."""
    return getattr(settings, _SECTIONS[group]).store or shared or settings.store


def _is_memory(url: str) -> bool:
    """True for a ``memory://`` URL (one that does not parse is refused by ``open_store``)."""
    return url.partition(":")[0].lower() == "memory"


def _note_a_missing_secret(args: argparse.Namespace, settings: GuardSettings) -> None:
    """Say on stderr that an account named without the app's lockout secret is looked up under another id."""
    if args.group == "locks" and getattr(args, "account", None) and settings.lockout.secret is None:
        print(
            "backend-guard locks: note: no lockout secret (BACKEND_GUARD_LOCKOUT__SECRET); if the app sets one,"
            " set it here too, or the account is looked up under another id and not found.",
            file=sys.stderr,
        )


@contextmanager
def _refusals() -> Iterator[None]:
    """A store failure as :class:`OperateFailed` with status 1, a configuration error with status 2."""
    try:
        yield
    except StorageError as exc:
        raise OperateFailed(f"the store is unavailable: {exc.detail}", 1) from None
    except ConfigurationError as exc:
        raise OperateFailed(exc.detail, 2) from None


def _audit_to_stderr() -> None:
    """On a command line (``backend-guard``, ``flask guard``, ``manage.py guard``) with no logging set up: audit
    records on stderr, the library's other records only from ERROR up (a store outage is the verb's own one line,
    not a warning too)."""
    if not audit_log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("backend-guard audit: %(message)s"))
        audit_log.addHandler(handler)
        audit_log.setLevel(logging.INFO)
        audit_log.propagate = False
        logging.basicConfig(level=logging.ERROR, format="backend-guard: %(name)s: %(message)s")


def reader_left() -> None:
    """After a ``BrokenPipeError`` on stdout (the reader of ``| head`` left): point stdout at ``/dev/null``, so
    that the interpreter's own flush at exit raises no second error (and prints no traceback).

    Example::

        except BrokenPipeError:
            reader_left()
            return 1
    """
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def run_command(args: argparse.Namespace, out: TextIO) -> int:
    """The ``backend-guard locks|limits|tokens`` entry: the verb's exit status, a failure as one stderr line.

    Example::

        run_command(build_parser().parse_args(["locks", "list"]), sys.stdout)
    """
    _audit_to_stderr()
    try:
        execute(args, out)
    except OperateFailed as exc:
        print(f"backend-guard {args.group} {args.verb}: {exc.message}", file=sys.stderr)
        return exc.status
    return 0
