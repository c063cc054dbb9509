"""The embedded default store: in-process, thread- and task-safe, bounded, with expiring keys.

It runs each :class:`~backend_guard.storage.base.Script`'s Python body under one lock, which makes every
script atomic as a Lua script is on Redis. State lives in this process only: several workers need Redis.

Bounded, in two areas chosen by each script's :attr:`~backend_guard.storage.Script.evictable`:

- **counters** (evictable scripts: the rate limiter's): at most ``max_keys`` live keys; when a flood of distinct
  keys fills them, the least recently used are evicted. Forgetting a counter at worst admits a few extra requests.
- **security state** (every other script: token families and subject indexes, used one-time tokens, lockout
  counters and locks): at most ``max_state_keys`` live keys, never evicted. When it is full, a script that would
  add a key raises :class:`~backend_guard.exceptions.StorageError` (its writes undone) and the part applies its
  own ``on_storage_error``; forgetting a lock or a used token instead would silently fail open.

Expired keys of both areas are dropped lazily and by a sweep (documented in docs/storage.md).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from .._check import check_callable, check_int, check_str
from ..exceptions import StorageError
from ._glob import glob_regex
from .base import Script, make_key

__all__ = ["MemoryStore", "MemoryView"]

_Entry = tuple[Any, float | None]  # value, absolute expiry in ms (None: no expiry)

#: More keys than any one script adds: security state this close to ``max_state_keys`` runs scripts guarded.
_SCRIPT_KEYS = 64


def _expired_keys(data: OrderedDict[str, _Entry], now_ms: float) -> list[str]:
    """The keys of ``data`` past their expiry at ``now_ms``."""
    return [k for k, (_, exp) in data.items() if exp is not None and exp <= now_ms]


def _drop_expired(data: OrderedDict[str, _Entry], now_ms: float) -> None:
    for k in _expired_keys(data, now_ms):
        del data[k]


def _script_failed(script: Script, exc: BaseException) -> StorageError:
    """A script's bug or bad argument (ValueError, TypeError, KeyError), reported as Redis reports a Lua error."""
    return StorageError(f"script {script.name!r} failed", original=exc)


class MemoryView:
    """The memory store's data as seen by a script's Python body, under the store's lock.

    Values are Python objects (ints, strings, dicts); ``now_ms`` is the store's clock in milliseconds,
    fixed for the duration of one script, as ``redis.call('TIME')`` is within one Lua script.

    Each store keeps one view and sets its ``now_ms`` under the lock before every script: a body uses the
    view it is given for the duration of the call only.

    Example::

        def body(db: MemoryView, keys, args):
            n = db.incr(keys[0])
            db.pexpire(keys[0], 1000)
            return n
    """

    __slots__ = ("_cap", "_data", "_undo", "now_ms")

    def __init__(self, data: OrderedDict[str, _Entry], now_ms: float, cap: int = 0) -> None:
        self._data = data  # the same dict for the store's lifetime (clear() empties it in place)
        self.now_ms = now_ms
        # While ``_undo`` is a dict (inside run_guarded, which the store uses when its state area is nearly full),
        # every write first records the key's previous entry there, and a write that would add a key past ``_cap``
        # raises StorageError; run_guarded then puts the recorded entries back, so a refused script leaves nothing.
        self._cap = cap
        self._undo: dict[str, _Entry | None] | None = None

    def _guard(self, key: str, adds: bool) -> None:
        """Record ``key``'s entry for undoing; refuse a new key when the area is full (guarded runs only)."""
        undo = self._undo
        assert undo is not None
        data = self._data
        if key not in undo:
            undo[key] = data.get(key)
        if adds and key not in data and len(data) >= self._cap:
            raise StorageError(
                f"The memory store's security state is full ({self._cap} keys, max_state_keys): refusing to add a "
                "key rather than forget a lock, a token family or a used one-time token."
            )

    def run_guarded(
        self, body: Callable[[MemoryView, Sequence[str], Sequence[Any]], Any], keys: Sequence[str], args: Sequence[Any]
    ) -> Any:
        """Run a script's ``body`` with every write recorded, refusing a key that would pass the bound; when the
        body raises (a refusal or a bug), put back every entry it wrote, so nothing of it stays, and re-raise.

        Example::

            view.run_guarded(script.memory, keys, args)  # StorageError when full, nothing written
        """
        undo: dict[str, _Entry | None] = {}
        self._undo = undo
        try:
            return body(self, keys, args)
        except BaseException:
            data = self._data
            for k, entry in undo.items():
                if entry is None:
                    data.pop(k, None)
                else:
                    data[k] = entry
            raise
        finally:
            self._undo = None

    # Every method reads an entry the way ``_live`` does, inlined: a key past its expiry is dropped and
    # reads as missing; a live key becomes the most recently used.

    def _live(self, key: str) -> _Entry | None:
        data = self._data
        entry = data.get(key)
        if entry is None:
            return None
        expires = entry[1]
        if expires is not None and expires <= self.now_ms:
            del data[key]
            return None
        data.move_to_end(key)
        return entry

    def get(self, key: str, default: Any = None) -> Any:
        """The live value of ``key``, or ``default``."""
        data = self._data
        entry = data.get(key)
        if entry is None:
            return default
        expires = entry[1]
        if expires is not None and expires <= self.now_ms:
            del data[key]
            return default
        data.move_to_end(key)
        return entry[0]

    def set(self, key: str, value: Any, px: float | None = None, keepttl: bool = False) -> None:
        """Set ``key`` (``px``: milliseconds to live; ``keepttl``: keep the current expiry)."""
        if self._undo is not None:
            self._guard(key, True)
        expires: float | None = None
        if keepttl:
            entry = self._live(key)
            expires = entry[1] if entry is not None else None
        elif px is not None:
            expires = self.now_ms + (1.0 if px < 1.0 else px)
        data = self._data
        data[key] = (value, expires)
        data.move_to_end(key)

    def delete(self, *keys: str) -> int:
        """Delete keys; how many were live."""
        n = 0
        for key in keys:
            if self._undo is not None:
                self._guard(key, False)
            if self._live(key) is not None:
                n += 1
            self._data.pop(key, None)
        return n

    def exists(self, key: str) -> bool:
        """True when ``key`` is live."""
        return self._live(key) is not None

    def pttl(self, key: str) -> int:
        """Milliseconds to live: -2 when missing, -1 when it never expires (as Redis PTTL)."""
        entry = self._live(key)
        if entry is None:
            return -2
        if entry[1] is None:
            return -1
        return max(0, int(entry[1] - self.now_ms))

    def pexpire(self, key: str, px: float) -> bool:
        """Set the time to live of an existing key, in milliseconds."""
        if self._undo is not None:
            self._guard(key, False)
        entry = self._live(key)
        if entry is None:
            return False
        self._data[key] = (entry[0], self.now_ms + (1.0 if px < 1.0 else px))  # already the most recent
        return True

    def incr(self, key: str, by: int = 1) -> int:
        """Add ``by`` to an integer value (0 when missing), keeping its expiry."""
        if self._undo is not None:
            self._guard(key, True)
        entry = self._live(key)
        value = (int(entry[0]) if entry is not None else 0) + by
        # Already the most recently used: moved there by _live, or new (appended last).
        self._data[key] = (value, entry[1] if entry is not None else None)
        return value


class MemoryStore:
    """In-process store: the embedded default (``"memory://"``), no server needed.

    Thread-safe (one lock; scripts are short and do no I/O) and usable from asyncio tasks (``arun`` runs the
    script inline: holding a lock for microseconds is cheaper than a thread hop). ``clock`` returns seconds
    and can be replaced in tests.

    Two bounded areas: counters of :attr:`~backend_guard.storage.Script.evictable` scripts (at most ``max_keys``,
    least recently used evicted under a flood) and security state of every other script (at most
    ``max_state_keys``, default ``max_keys``, never evicted: when full, a script that would add a key raises
    :class:`~backend_guard.exceptions.StorageError` and changes nothing).

    Example::

        store = MemoryStore(max_keys=10_000, max_state_keys=50_000)
        result = store.run(script, [store.key("rl", "alice")], [5])
    """

    def __init__(
        self,
        *,
        prefix: str = "bg",
        max_keys: int = 100_000,
        max_state_keys: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        check_str("prefix", prefix, empty=True)
        check_int("max_keys", max_keys, min=1)
        check_int("max_state_keys", max_keys if max_state_keys is None else max_state_keys, min=1)
        check_callable("clock", clock)
        if max_state_keys is None:
            max_state_keys = max_keys
        self.prefix = prefix
        self.max_keys = max_keys
        self.max_state_keys = max_state_keys
        self.clock = clock
        self._data: OrderedDict[str, _Entry] = OrderedDict()  # counters: least recently used first
        self._state: OrderedDict[str, _Entry] = OrderedDict()  # security state: never evicted
        self._lock = threading.Lock()
        self._next_sweep = 0.0
        self._next_state_purge = 0.0
        # Below this many state keys no script can reach ``max_state_keys`` (none adds _SCRIPT_KEYS keys), so
        # scripts run unguarded; from it on, each runs guarded (writes recorded, a key past the bound refused).
        self._guard_from = max(0, max_state_keys - _SCRIPT_KEYS)
        # One view per area, for every script (its now_ms set under the lock): no object made per call.
        self._view = MemoryView(self._data, 0.0)
        self._state_view = MemoryView(self._state, 0.0, max_state_keys)

    def __repr__(self) -> str:
        return f"MemoryStore(prefix={self.prefix!r}, max_keys={self.max_keys}, max_state_keys={self.max_state_keys})"

    def _sweep(self, now_ms: float) -> None:
        """Drop expired keys of both areas (at most every 10 s), then the least recently used counters while over
        ``max_keys``. Security state is never evicted."""
        if now_ms >= self._next_sweep:
            _drop_expired(self._data, now_ms)
            _drop_expired(self._state, now_ms)
            self._next_sweep = now_ms + 10_000.0
        while len(self._data) > self.max_keys:
            self._data.popitem(last=False)

    def _run_state(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run a security-state script (under the lock): unguarded while far from full, else guarded."""
        view = self._state_view
        now_ms = view.now_ms = self.clock() * 1000.0
        if now_ms >= self._next_sweep:
            self._sweep(now_ms)
        try:
            if len(self._state) < self._guard_from:
                return script.memory(view, keys, args)
            return self._run_guarded(script, keys, args, now_ms)
        except (ValueError, TypeError, KeyError) as exc:
            raise _script_failed(script, exc) from exc

    def _run_guarded(self, script: Script, keys: Sequence[str], args: Sequence[Any], now_ms: float) -> Any:
        """Run a security-state script when the area is nearly full: nothing of a refused (or failed) script
        stays. Expired entries are reclaimed first (at most once a second)."""
        if now_ms >= self._next_state_purge:
            _drop_expired(self._state, now_ms)
            self._next_state_purge = now_ms + 1000.0
        return self._state_view.run_guarded(script.memory, keys, args)

    # -- the Store protocol ---------------------------------------------------------------------------------

    def key(self, namespace: str, *parts: object, tag: object | None = None) -> str:
        """A safe key under this store's prefix (see :func:`~backend_guard.storage.base.make_key`)."""
        return make_key(self.prefix, namespace, parts, tag)

    def run(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run the script's Python body atomically."""
        lock = self._lock
        lock.acquire()  # (cheaper than ``with``, on the path of every decision)
        try:
            if not script.evictable:
                return self._run_state(script, keys, args)
            view = self._view
            # Functions held by objects are loaded, then called: CPython 3.11 specialises the load, not the
            # call through an attribute that is no method (this is every decision's path).
            clock, body = self.clock, script.memory
            now_ms = view.now_ms = clock() * 1000.0
            try:
                result = body(view, keys, args)
            except (ValueError, TypeError, KeyError) as exc:  # a script bug or bad argument, as a Lua error
                raise _script_failed(script, exc) from exc
            finally:
                if now_ms >= self._next_sweep or len(self._data) > self.max_keys:
                    self._sweep(now_ms)
            return result
        finally:
            lock.release()

    async def arun(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Same as :meth:`run`: no I/O, so no thread hop."""
        return self.run(script, keys, args)

    def scan(self, match: str, count: int = 500) -> list[str]:
        """Live keys matching the glob ``match`` (read as Redis reads SCAN MATCH), at most ``count``."""
        matches = glob_regex(match).fullmatch
        with self._lock:
            now_ms = self.clock() * 1000.0
            out: list[str] = []
            for data in (self._state, self._data):
                for k, (_, exp) in list(data.items()):
                    if (exp is None or exp > now_ms) and matches(k.encode("utf-8", "surrogatepass")):
                        out.append(k)
                        if len(out) >= count:
                            return out
            return out

    async def ascan(self, match: str, count: int = 500) -> list[str]:
        """Async twin of :meth:`scan`."""
        return self.scan(match, count)

    def delete(self, *keys: str) -> int:
        """Delete keys; how many were live."""
        with self._lock:
            now_ms = self.clock() * 1000.0
            n = 0
            for view in (self._state_view, self._view):
                view.now_ms = now_ms
                n += view.delete(*keys)
            return n

    async def adelete(self, *keys: str) -> int:
        """Async twin of :meth:`delete`."""
        return self.delete(*keys)

    def ping(self) -> bool:
        """Always True: the memory store cannot be down."""
        return True

    def close(self) -> None:
        """Nothing to release."""

    async def aclose(self) -> None:
        """Nothing to release."""

    def __len__(self) -> int:
        return len(self._data) + len(self._state)

    def clear(self) -> None:
        """Forget everything (tests, or a reset from an admin command)."""
        with self._lock:
            self._data.clear()
            self._state.clear()
