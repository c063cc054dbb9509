"""The current request id for log records, and the one place server errors are logged.

:data:`request_id_var` holds the id of the request being served (set by the RequestId middlewares, in the
task or thread serving it); :class:`RequestIdFilter` copies it onto every log record as ``record.request_id``
so a format string can use ``%(request_id)s``. :func:`log_server_error` logs a 5xx once, with the request
id, method, route, status and traceback, and never a header, a body or a query string; a validation error in
the traceback's chain is shown by its class, pointers and error types, never by its message (which quotes
the input that failed: a password in a request, a token in a response).
"""

from __future__ import annotations

import builtins
import copy
import itertools
import logging
import os
import re
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Generic, TypeVar

from ._check import check_bool, check_callable, check_instance, check_str, optional
from .errors import FieldError, _validation_failures
from .exceptions import ConfigurationError, StorageError

__all__ = [
    "RedactedValidationError",
    "RequestIdFilter",
    "RequestIdPolicy",
    "current_request_id",
    "is_valid_request_id",
    "log_server_error",
    "new_request_id",
    "request_id_var",
]

MAX_REQUEST_ID_LENGTH = 128
_VALID_ID = re.compile(rb"[A-Za-z0-9._:-]{1,128}")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")

#: The id of the request this task/thread is serving (None outside a request).
request_id_var: ContextVar[str | None] = ContextVar("backend_guard_request_id", default=None)
#: ``request_id_var.set`` and ``.reset``, bound once for the middlewares' per-request calls (CPython 3.11 makes a
#: new bound method at each ``request_id_var.set(...)``: it does not specialise attribute reads on a ContextVar).
set_request_id = request_id_var.set
reset_request_id = request_id_var.reset


def current_request_id() -> str | None:
    """The id of the request being served, or None outside a request.

    Example::

        log.info("charging card", extra={"order": order_id})   # or: current_request_id()
    """
    return request_id_var.get()


class RequestIdFilter(logging.Filter):
    """A logging filter that adds ``request_id`` (``"-"`` outside a request) to every record it sees.

    Attach it to a handler so every record, including other libraries', carries the id.

    Example::

        handler = logging.StreamHandler()
        handler.addFilter(RequestIdFilter())
        handler.setFormatter(logging.Formatter("%(asctime)s [%(request_id)s] %(message)s"))
    """

    def __init__(self, name: str = "", default: str = "-") -> None:
        check_str("name", name, empty=True)
        check_str("default", default, empty=True)
        super().__init__(name)
        self.default = default

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id_var.get() or self.default
        return True


def log_server_error(
    exc: BaseException,
    *,
    logger: str | logging.Logger = "backend_guard.errors",
    request_id: str | None,
    method: str,
    route: str,
    status: int,
    after_start: bool = False,
) -> None:
    """Log an unexpected exception once, server side: request id, method, route, status and traceback (a
    :class:`~backend_guard.exceptions.StorageError` of an outage, which the store logs itself when it starts and
    ends: one warning line, its cause's class named, no traceback).

    Only these values are logged; headers (``Authorization``, ``Cookie``), bodies and query strings never.
    A pydantic or FastAPI validation error anywhere in the exception's chain (``__cause__``, ``__context__``,
    an exception group's members) keeps its traceback frames but its message is replaced by its class name and
    each error's pointer and type (a :class:`RedactedValidationError`): ``str()`` of such an error quotes the
    input that failed, a password posted to a model or a token a route returned through the wrong model.
    Another exception of that chain whose message (or notes) quotes such an error or one of its failed inputs
    (``raise RuntimeError(exc)``, ``f"...: {exc}"``, a ``__str__`` showing it) is shown by its class only.

    Example::

        log_server_error(exc, request_id=rid, method="GET", route="/users/{id}", status=500)
    """
    log = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
    # The method and the route (the raw path when no route template matched) come from the request: a
    # percent-encoded CR/LF in a path would otherwise forge log lines.
    method, route = _printable(method, 32), _printable(route, 512)
    what = "after the response started; connection closed" if after_start else f"answered {status}"
    extra = {"request_id": request_id, "http_method": method, "http_route": route, "http_status": status}
    if isinstance(exc, StorageError) and exc.outage and not after_start:
        # An outage the store logs itself, when it starts and when it ends: here one line, not a traceback per
        # request (a flood while it lasts). Its cause is named by class only (a Redis error may quote the URL).
        # Any other store failure (an exhausted pool, an error reply, a full memory store) is logged in full.
        cause = type(exc.original).__name__ if exc.original is not None else "-"
        log.warning(
            "StorageError in %s %s (%s; cause %s) [request_id=%s]",
            method,
            route,
            what,
            cause,
            request_id or "-",
            extra=extra,
        )
        return
    logged = _loggable(exc)
    log.error(
        "Unhandled %s in %s %s (%s) [request_id=%s]",
        type(exc).__name__,
        method,
        route,
        what,
        request_id or "-",
        exc_info=(type(logged), logged, logged.__traceback__),
        extra=extra,
    )


class RedactedValidationError(Exception):
    """Stands in, in a logged traceback, for a validation error whose message would show the failed input.

    Its message names the original class and each error's JSON pointer and type; its traceback is the
    original's. Only :func:`log_server_error` makes these: the application never sees one.

    Example::

        RedactedValidationError("fastapi.exceptions.ResponseValidationError: 1 error: /response/token string_type")
    """


_MAX_LOGGED_FIELD_ERRORS = 20
_BaseGroup: type[BaseException] | None = getattr(builtins, "BaseExceptionGroup", None)  # Python 3.11+


def _linked(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions a traceback printer shows with ``exc``: its cause, its context, a group's members."""
    yield from (link for link in (exc.__cause__, exc.__context__) if link is not None)
    if _is_group(exc):
        yield from exc.exceptions  # type: ignore[attr-defined]


def _is_group(exc: BaseException) -> bool:
    return _BaseGroup is not None and isinstance(exc, _BaseGroup)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """Every exception a traceback printer shows with ``exc`` (``exc`` first), each once: a chain may loop."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        item = stack.pop()
        if id(item) not in seen:
            seen.add(id(item))
            yield item
            stack.extend(_linked(item))


def _loggable(exc: BaseException) -> BaseException:
    """``exc`` itself, or, when a validation error is in its chain, a copy of the chain with those redacted.

    The app's exception objects are never changed: the chain down to the validation errors is copied (same
    class, arguments and traceback) and each validation error is replaced by a :class:`RedactedValidationError`.
    """
    try:
        if any(_validation_failures(item) is not None for item in _chain(exc)):
            return _mirror(exc, {}, set(), _quoted_texts(exc))
        return exc
    except Exception:  # an exotic chain: fail closed, the frames of the outermost exception only
        out = RedactedValidationError(f"{_qualified(exc)} (its chain could not be shown safely)")
        out.__traceback__ = exc.__traceback__
        return out


_MIN_QUOTED = 4  # a failed input shorter than this is too common a text to treat as quoted
_MAX_QUOTED = 200  # texts looked for, at most


def _quoted_texts(exc: BaseException) -> tuple[str, ...]:
    """What another exception's message may quote of the validation errors in ``exc``'s chain: each one's
    ``str()`` and every text and number it failed on (inside dicts and lists too), at most ``_MAX_QUOTED``."""
    errors = [item for item in _chain(exc) if _validation_failures(item) is not None]
    found = [str(item) for item in errors]
    _add_input_texts(found, _failed_inputs(errors))
    return tuple(found)


def _failed_inputs(errors: list[BaseException]) -> list[object]:
    """The input each error of these validation errors failed on."""
    return [error.get("input") for item in errors for error in item.errors()]  # type: ignore[attr-defined]


def _add_input_texts(found: list[str], inputs: list[object]) -> None:
    """Add to ``found`` every text and number in ``inputs`` (inside dicts and lists too), while it holds fewer
    than ``_MAX_QUOTED``."""
    while inputs and len(found) < _MAX_QUOTED:
        value = inputs.pop()
        children = _children(value)
        if children is not None:
            inputs.extend(children)
            continue
        text = _quotable(value)
        if text is not None:
            found.append(text)


def _children(value: object) -> list[object] | None:
    """A dict's keys and values, a list's or tuple's items; None for anything else."""
    if isinstance(value, dict):
        return [*value.keys(), *value.values()]
    if isinstance(value, (list, tuple)):
        return list(value)
    return None


def _is_scalar(value: object) -> bool:
    """True for what a message may quote of an input: a text, bytes or a number (a bool is not quoted)."""
    return isinstance(value, (str, bytes, int, float)) and not isinstance(value, bool)


def _quotable(value: object) -> str | None:
    """A failed input's text as a message would quote it: str, bytes and numbers (not bools) of at least
    ``_MIN_QUOTED`` characters; None otherwise."""
    if not _is_scalar(value):
        return None
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return text if len(text) >= _MIN_QUOTED else None


def _quotes(exc: BaseException, quoted: tuple[str, ...]) -> bool:
    """True when ``exc``'s message or notes, as a traceback prints them, hold one of the ``quoted`` texts."""
    try:
        text = "\n".join([str(exc), *map(str, getattr(exc, "__notes__", None) or ())])
    except Exception:  # a traceback printer shows "<exception str() failed>": nothing quoted
        return False
    return any(q in text for q in quoted)


def _mirror(
    exc: BaseException, done: dict[int, BaseException], active: set[int], quoted: tuple[str, ...]
) -> BaseException:
    known = done.get(id(exc))
    if known is not None:
        return known
    if id(exc) in active:  # an exception group whose member's chain leads back to the group
        return RedactedValidationError(f"{_qualified(exc)} (chain loops)")
    active.add(id(exc))
    out = _stand_in(exc, done, active, quoted)
    done[id(exc)] = out
    out.__traceback__ = exc.__traceback__
    out.__cause__ = _mirror_link(exc.__cause__, done, active, quoted)
    out.__context__ = _mirror_link(exc.__context__, done, active, quoted)
    out.__suppress_context__ = exc.__suppress_context__
    return out


def _mirror_link(
    exc: BaseException | None, done: dict[int, BaseException], active: set[int], quoted: tuple[str, ...]
) -> BaseException | None:
    return None if exc is None else _mirror(exc, done, active, quoted)


def _stand_in(
    exc: BaseException, done: dict[int, BaseException], active: set[int], quoted: tuple[str, ...]
) -> BaseException:
    """What the logged chain shows for ``exc``: a redacted validation error, a copy, or its class only when its
    message quotes a validation error or its input."""
    failures = _validation_failures(exc)
    if failures is not None:
        return RedactedValidationError(_summary(exc, failures))
    out = _copy(exc, done, active, quoted)
    if _quotes(out, quoted):  # RuntimeError(exc), f"...: {exc}", a __str__ showing it, the input itself
        return Exception(f"{_qualified(exc)} (its message quotes a validation error's input; not logged)")
    return out


def _copy(
    exc: BaseException, done: dict[int, BaseException], active: set[int], quoted: tuple[str, ...]
) -> BaseException:
    """A new exception of ``exc``'s class and arguments (a group's members mirrored), else a stand-in."""
    try:
        if _is_group(exc):
            return _copy_group(exc, done, active, quoted)
        return copy.copy(exc)  # class, args and __dict__ (so __notes__); not the traceback or the chain
    except Exception:
        return Exception(f"{_qualified(exc)}: {_printable(exc, 2048)}")


def _copy_group(
    exc: BaseException, done: dict[int, BaseException], active: set[int], quoted: tuple[str, ...]
) -> BaseException:
    """A new exception group of ``exc``'s class and message, its members mirrored, its notes copied."""
    members = [_mirror(m, done, active, quoted) for m in exc.exceptions]  # type: ignore[attr-defined]
    out: BaseException = exc.derive(members)  # type: ignore[attr-defined]
    notes = getattr(exc, "__notes__", None)
    if notes is not None:
        out.__notes__ = list(notes)  # type: ignore[attr-defined]
    return out


def _qualified(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}"


def _summary(exc: BaseException, failures: tuple[FieldError, ...]) -> str:
    """``module.Class: N validation error(s) (input not logged): /pointer type; ...``."""
    parts = [f"{f.pointer or '/'} {f.type}" for f in failures[:_MAX_LOGGED_FIELD_ERRORS]]
    if len(failures) > _MAX_LOGGED_FIELD_ERRORS:
        parts.append(f"... {len(failures) - _MAX_LOGGED_FIELD_ERRORS} more")
    return _printable(f"{_qualified(exc)}: {_count(len(failures))} (input not logged): " + "; ".join(parts), 4096)


def _count(n: int) -> str:
    return f"{n} validation error{'' if n == 1 else 's'}"


_UNPRINTABLE = re.compile(r"[^\x20-\x7e\xa0-\ud7ff\ue000-\U0010ffff]|[\u2028\u2029]")


def _printable(text: object, limit: int) -> str:
    """``text`` on one line: control characters escaped (``\\n``, ``\\x1b``), at most ``limit`` characters."""
    value = str(text)
    if len(value) > limit:
        value = value[:limit] + "..."
    if _UNPRINTABLE.search(value) is None:
        return value
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), value)


def _new_counter() -> itertools.count[int]:
    # hex() of a number between 2**128 and 2**129 is "0x1" and 32 hex digits: dropping the first three
    # characters leaves the 64-bit random prefix and the 64-bit counter, zero-padded, in one cheap call.
    return itertools.count((1 << 128) | (int.from_bytes(os.urandom(8), "big") << 64))


# A request id needs to be unique, not secret: 64 random bits drawn once per process (and again in every
# forked child) followed by a 64-bit counter. Two processes share a prefix with probability about
# n**2 / 2**65 for n processes ever started; within a process the counter does not repeat (2**64 ids).
# Making one costs a counter step and a hex(), not a system call. Ids reveal the order of requests within a
# process: never use a request id as a secret or a token.
_counter = _new_counter()


def _reseed() -> None:
    """In a forked child: a new prefix, so parent and children never make the same id."""
    global _counter
    _counter = _new_counter()


if hasattr(os, "register_at_fork"):  # pragma: no branch - absent on Windows, where there is no fork
    os.register_at_fork(after_in_child=_reseed)


def new_request_id() -> str:
    """A fresh request id: 32 hex characters, a random per-process prefix and a counter (unique, not secret).

    The first 16 characters are 64 random bits drawn once per process (again after a fork), the last 16 a
    counter, so ids are unique across processes and hosts without a system call per id; they are not
    unguessable and must never be used as secrets.

    Example::

        >>> len(new_request_id())
        32
    """
    return hex(next(_counter))[3:]


def is_valid_request_id(value: str | bytes) -> bool:
    """True when an incoming id is 1-128 characters of ``[A-Za-z0-9._:-]`` (safe in logs and headers).

    Example::

        >>> is_valid_request_id("abc-123"), is_valid_request_id("a b"), is_valid_request_id("x" * 129)
        (True, False, False)
    """
    raw = value.encode("latin-1", "replace") if isinstance(value, str) else value
    return _VALID_ID.fullmatch(raw) is not None


class RequestIdPolicy:
    """Which request id a request gets: the incoming header's when trusted and safe, else a new one.

    Example::

        policy = RequestIdPolicy(trust_incoming=True)
        policy.choose(b"abc-123")   # 'abc-123'
        policy.choose(b"<script>")  # a fresh id
    """

    __slots__ = ("generator", "header", "trust_incoming")

    def __init__(
        self,
        *,
        header: str = "X-Request-ID",
        trust_incoming: bool = True,
        generator: Callable[[], str] | None = None,
    ) -> None:
        if not _TOKEN.fullmatch(check_str("header", header)):
            raise ConfigurationError("header: the request id header must be a valid HTTP header name.")
        check_bool("trust_incoming", trust_incoming)
        optional(check_callable, "generator", generator)
        self.header = header
        self.trust_incoming = trust_incoming
        self.generator = generator or new_request_id

    def choose(self, incoming: bytes | str | None) -> str:
        """The id for a request whose incoming header value is ``incoming`` (None when absent)."""
        # On the path of every request: the two common cases (a safe incoming id, our own new id) stay inline.
        if incoming and self.trust_incoming:
            raw = incoming.encode("latin-1", "replace") if isinstance(incoming, str) else incoming
            if _VALID_ID.fullmatch(raw) is not None:
                return raw.decode("ascii")
        if self.generator is new_request_id:  # our own ids are always safe: no need to validate them
            return new_request_id()
        return self._custom_id()

    def _custom_id(self) -> str:
        """A fresh id from a custom generator: an unsafe one must not reach headers and logs."""
        rid = self.generator()
        return rid if is_valid_request_id(rid) else new_request_id()


App = TypeVar("App")  # an ASGI or a WSGI app


class RequestIdShell(Generic[App]):
    """What both ``RequestIdMiddleware`` shells share (ASGI and WSGI): each keeps only its protocol.

    The :class:`RequestIdPolicy` (``policy``, or its arguments as keywords); a shell precomputes what it
    needs from it in :meth:`_compile`.

    Example::

        class RequestIdMiddleware(RequestIdShell[WSGIApp]):
            def _compile(self) -> None:
                self._environ_key = "HTTP_" + self.policy.header.upper().replace("-", "_")
    """

    def __init__(
        self,
        app: App,
        policy: RequestIdPolicy | None = None,
        *,
        header: str = "X-Request-ID",
        trust_incoming: bool = True,
        generator: Callable[[], str] | None = None,
    ) -> None:
        self.app = app
        optional(check_instance, "policy", policy, RequestIdPolicy)
        self.policy = policy or RequestIdPolicy(header=header, trust_incoming=trust_incoming, generator=generator)
        self._compile()

    def _compile(self) -> None:
        """Precompute the shell's per-request constants from ``self.policy`` (header name bytes, environ key)."""
