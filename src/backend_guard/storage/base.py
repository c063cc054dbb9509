"""The storage protocol: atomic scripts, a safe key scheme, and the contract on failure.

Every stateful part (rate limits, lockout, refresh rotation, one-time tokens) expresses each read-modify-write
decision as one :class:`Script`: a Lua body for Redis and a Python function for the memory store, with the same
keys, arguments and result shape. A store runs a script atomically, in one round trip, timed by its own clock
(the Redis server clock on Redis). The two implementations of a script are tested against each other by running
one suite over both backends.

Retention contract: a store never silently drops the keys of a script that is not
:attr:`Script.evictable` (security state) before they expire. When it cannot keep them it says so: the memory
store raises StorageError for a new key once its security state is full, and the Redis store refuses (or warns
about) a server whose ``maxmemory-policy`` could evict them.

Failure contract: a store raises :class:`~backend_guard.exceptions.StorageError` for every backend failure
(connection refused, timeout, a script error). It never decides fail-open or fail-closed itself: the part that
called it does, from its own ``on_storage_error`` setting.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from .memory import MemoryView

__all__ = ["Script", "Store", "escape_key_part", "glob_escape", "is_cluster", "make_key"]


#: Key parts longer than this (in UTF-8 bytes) are replaced by a digest, so untrusted input cannot make huge keys.
MAX_KEY_PART = 64

_ESCAPES = {"%": "%25", ":": "%3A", "{": "%7B", "}": "%7D", "#": "%23", " ": "%20"}
#: A part of printable ASCII characters and spaces (most parts: a client address, a route, a digest, a scope such
#: as ``GET /users/{id}``) is escaped by one table (the six above) instead of a loop per character.
_PRINTABLE_ASCII = re.compile("[ -~]*")
_ESCAPE_TABLE = str.maketrans(_ESCAPES)


def escape_key_part(part: object) -> str:
    """Return ``part`` as one key segment that can never collide with another part sequence.

    ``%``, ``:``, ``{``, ``}``, ``#`` and spaces are percent-escaped, control and non-ASCII characters too; a part
    longer than :data:`MAX_KEY_PART` bytes (or one that would be after escaping) becomes ``#`` and a SHA-256
    digest. An escaped part never holds a raw ``#``, so the two forms cannot meet.

    Example::

        >>> escape_key_part("a:b")
        'a%3Ab'
    """
    text = part if isinstance(part, str) else str(part)
    # A plain str only: a subclass may answer len() or translate() its own way (the loop below reads its characters).
    if type(text) is str and len(text) <= MAX_KEY_PART and _PRINTABLE_ASCII.fullmatch(text):  # ASCII: a byte each
        return text.translate(_ESCAPE_TABLE)
    raw = text.encode("utf-8", "surrogatepass")
    if len(raw) <= MAX_KEY_PART:
        out = []
        for ch in text:
            if ch in _ESCAPES:
                out.append(_ESCAPES[ch])
            elif " " < ch < "\x7f":
                out.append(ch)
            else:
                out.extend(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
        escaped = "".join(out)
        if len(escaped) <= MAX_KEY_PART * 3:
            return escaped
    return "#" + hashlib.sha256(raw).hexdigest()[:40]


def make_key(prefix: str, namespace: str, parts: Sequence[object], tag: object | None = None) -> str:
    """Build ``prefix:namespace[:{tag}]:part:...`` from escaped parts.

    ``tag`` becomes a Redis Cluster hash tag, so every key that one script touches can share a slot.

    Example::

        >>> make_key("bg", "rl", ["/users/{id}", "1.2.3.4"])
        'bg:rl:/users/%7Bid%7D:1.2.3.4'
    """
    segments = [prefix, namespace]
    if tag is not None:
        segments.append("{" + escape_key_part(tag) + "}")
    segments.extend(escape_key_part(p) for p in parts)
    return ":".join(segments)


_GLOB_SPECIAL = frozenset("\\*?[]")


def glob_escape(text: str) -> str:
    """``text`` as a literal inside a :meth:`Store.scan` pattern: ``\\``, ``*``, ``?``, ``[`` and ``]`` escaped.

    Every store reads scan patterns with Redis's glob rules (``SCAN MATCH``: a backslash makes the next
    character literal), so an escaped key, or a key prefix, matches only itself on every backend.

    Example::

        >>> glob_escape("login:a*[b]")
        'login:a\\\\*\\\\[b\\\\]'
        >>> store.scan(glob_escape(store.key("rl", tag=user_key)) + ":*")   # doctest: +SKIP
    """
    return "".join("\\" + ch if ch in _GLOB_SPECIAL else ch for ch in text)


def is_cluster(store: object) -> bool:
    """True when ``store`` is on Redis Cluster, where every key one script touches must share a hash slot.

    A store says so with a true ``cluster`` attribute (:class:`~backend_guard.storage.RedisStore` does for
    ``redis+cluster://`` URLs and cluster clients); keys built with the same ``tag=`` always share a slot.

    Example::

        if is_cluster(store) and len({charge.key for charge in charges}) > 1:
            raise ConfigurationError("...")
    """
    return bool(getattr(store, "cluster", False))


MemoryFunction = Callable[["MemoryView", Sequence[str], Sequence[Any]], Any]


@dataclass(frozen=True)
class Script:
    """One atomic operation, in Lua for Redis and in Python for the memory store.

    ``lua`` is the script body (or ``lua_file``, the path of a ``.lua`` file, kept beside its Python twin in
    the part's package); ``memory`` gets a
    :class:`~backend_guard.storage.memory.MemoryView` (the store's data under its lock, with ``now_ms``), the
    keys and the arguments, and must return what the Lua body returns, in Redis's reply shape (integers,
    strings, nested lists; never floats: Lua numbers reach Python truncated to integers).

    ``evictable`` says what losing the script's keys costs. True only for state a store may forget under memory
    pressure at worst admitting a few extra requests (the rate limiter's counters). False (the default) for
    security state: token families and subject indexes, used one-time tokens, lockout counters and locks. The
    memory store keeps the two apart and never evicts security state (when full it refuses a new key with
    StorageError); the Redis store refuses a ``maxmemory-policy`` that could evict security state before it runs
    its first script that is not evictable.

    Example::

        incr = Script(
            name="incr",
            lua="return redis.call('INCR', KEYS[1])",
            memory=lambda db, keys, args: db.incr(keys[0]),
        )
        store.run(incr, [store.key("demo", "x")], [])
    """

    name: str
    memory: MemoryFunction
    lua: str = ""
    lua_file: str | Path = ""
    evictable: bool = False
    _source: list[str] = field(default_factory=list, repr=False, compare=False)

    @property
    def source(self) -> str:
        """The Lua source, read once from ``lua_file`` when given."""
        if not self._source:
            text = self.lua or Path(self.lua_file).read_text(encoding="utf-8")
            self._source.extend((text, hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()))
        return self._source[0]

    @property
    def sha(self) -> str:
        """The SHA-1 digest Redis names the script by (EVALSHA)."""
        if not self._source:
            _ = self.source
        return self._source[1]


@runtime_checkable
class Store(Protocol):
    """What every storage backend offers: atomic scripts, keys, and a scan, on sync and async paths.

    Example::

        store = open_store("memory://")
        store.run(script, [store.key("ns", "part")], [1])
        await store.arun(script, [store.key("ns", "part")], [1])
    """

    prefix: str

    def key(self, namespace: str, *parts: object, tag: object | None = None) -> str:
        """A safe key for ``parts`` under this store's prefix and ``namespace``."""

    def run(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run ``script`` atomically; raises StorageError on failure."""

    async def arun(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run ``script`` atomically without blocking the event loop; raises StorageError on failure."""

    def scan(self, match: str, count: int = 500) -> list[str]:
        """Keys matching a glob ``match`` (never KEYS on Redis), at most ``count``.

        ``match`` follows Redis's ``SCAN MATCH`` rules on every backend (``*``, ``?``, ``[...]``, ``[^...]``
        and a backslash escaping the next character): quote untrusted text with :func:`glob_escape`.
        """

    async def ascan(self, match: str, count: int = 500) -> list[str]:
        """Async twin of :meth:`scan`."""

    def delete(self, *keys: str) -> int:
        """Delete keys; returns how many existed."""

    async def adelete(self, *keys: str) -> int:
        """Async twin of :meth:`delete`."""

    def ping(self) -> bool:
        """True when the backend answers."""

    def close(self) -> None:
        """Release connections (sync path)."""

    async def aclose(self) -> None:
        """Release connections (async path)."""
