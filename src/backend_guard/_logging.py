"""The current request id for log records, and the one place server errors are logged.

:data:`request_id_var` holds the id of the request being served (set by the RequestId middlewares, in the
task or thread serving it); :class:`RequestIdFilter` copies it onto every log record as ``record.request_id``
so a format string can use ``%(request_id)s``. :func:`log_server_error` logs a 5xx once, with the request
id, method, route, status and traceback, and never a header, a body or a query string.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import Callable
from contextvars import ContextVar
from typing import Generic, TypeVar

from ._check import check_bool, check_callable, check_instance, check_str, optional
from .exceptions import ConfigurationError

__all__ = [
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
    """Log an unexpected exception once, server side: request id, method, route, status and traceback.

    Only these values are logged; headers (``Authorization``, ``Cookie``), bodies and query strings never.

    Example::

        log_server_error(exc, request_id=rid, method="GET", route="/users/{id}", status=500)
    """
    log = logger if isinstance(logger, logging.Logger) else logging.getLogger(logger)
    # The method and the route (the raw path when no route template matched) come from the request: a
    # percent-encoded CR/LF in a path would otherwise forge log lines.
    method, route = _printable(method, 32), _printable(route, 512)
    what = "after the response started; connection closed" if after_start else f"answered {status}"
    log.error(
        "Unhandled %s in %s %s (%s) [request_id=%s]",
        type(exc).__name__,
        method,
        route,
        what,
        request_id or "-",
        exc_info=(type(exc), exc, exc.__traceback__),
        extra={
            "request_id": request_id,
            "http_method": method,
            "http_route": route,
            "http_status": status,
        },
    )


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
        if incoming and self.trust_incoming:
            raw = incoming.encode("latin-1", "replace") if isinstance(incoming, str) else incoming
            if _VALID_ID.fullmatch(raw) is not None:
                return raw.decode("ascii")
        generator = self.generator
        if generator is new_request_id:  # our own ids are always safe: no need to validate them
            return new_request_id()
        rid = generator()
        # A custom generator making unsafe ids must not put them in headers and logs.
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
