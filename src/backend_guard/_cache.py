"""The one cache type for values keyed on request data: bounded by entries and by bytes, oldest out first.

What lives here: :class:`BoundedCache`, used by every part that remembers a result per path, origin, client
address, identifier or token header. Clients choose those keys, so a count bound alone lets a flood of distinct
large keys (4,000 paths of 100 KB) hold hundreds of megabytes; here the approximate bytes of keys and values
are bounded too, and an entry larger than a fraction of the budget is not cached at all (its value is computed
each time, as on a miss).

A hit is one lookup in a plain dict (``cache.get`` is that dict's own ``get``: no Python code runs, which
is what the per-request paths need); writes (misses) take a lock, so the byte total stays exact when threads
insert and evict together. The entry put first goes first (a hit does not refresh it): under a flood of new keys
a frequently used entry is computed again once per ``max_entries`` misses, a cost no flood can make larger.
"""

from __future__ import annotations

import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

__all__ = ["BoundedCache", "approx_size", "bounded_caches"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
D = TypeVar("D")

_ALL: weakref.WeakSet[BoundedCache[Any, Any]] = weakref.WeakSet()


def approx_size(obj: object, _depth: int = 0) -> int:
    """Approximate bytes held by ``obj``: strings and bytes in full, tuples and lists with their items.

    Other objects count as ``sys.getsizeof`` (their own ``__sizeof__``), so a cached object holding
    per-entry strings says so by defining ``__sizeof__``.

    Example::

        >>> approx_size(("GET", "/x" * 1000)) > 2000
        True
    """
    size = sys.getsizeof(obj)
    if _depth < 4 and isinstance(obj, (tuple, list)):
        for item in obj:  # a leaf (a string, mostly) is its own size: no call of this function for it
            kind = type(item)  # the real type (an object can claim any __class__)
            if kind is str or kind is bytes:
                # The collector tracks neither, so their own __sizeof__ is what sys.getsizeof answers (a quarter
                # of its cost: no special-method lookup, no collector header to add). Subclasses take the long way.
                size += item.__sizeof__()
            else:
                size += approx_size(item, _depth + 1) if isinstance(item, (tuple, list)) else sys.getsizeof(item)
    return size


class BoundedCache(Generic[K, V]):
    """A cache holding at most ``max_entries`` entries and ``max_bytes`` of keys+values.

    Sizes are approximate (:func:`approx_size`, or ``sizeof``); an entry over ``max_entry_bytes`` (a 64th
    of ``max_bytes`` unless given) is not stored; the oldest entries go first. ``get(key, default=None)`` is
    the value under ``key`` or ``default``. ``name`` says which cache it is (in :func:`bounded_caches`).

    Example::

        cache: BoundedCache[str, int] = BoundedCache("example.lengths", max_entries=1024, max_bytes=1 << 20)
        found = cache.get(path)
        if found is None:
            found = len(path)
            cache.put(path, found)
    """

    __slots__ = (
        "__weakref__",
        "_data",
        "_lock",
        "_nbytes",
        "_sizeof",
        "_sizes",
        "get",
        "max_bytes",
        "max_entries",
        "max_entry_bytes",
        "name",
    )

    def __init__(
        self,
        name: str,
        *,
        max_entries: int,
        max_bytes: int,
        max_entry_bytes: int | None = None,
        sizeof: Callable[[object], int] = approx_size,
    ) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("a bounded cache needs room for at least one entry and one byte")
        self.name = name
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_entry_bytes if max_entry_bytes is not None else max(1, max_bytes // 64)
        self._sizeof = sizeof
        self._data: dict[K, V] = {}
        self._sizes: OrderedDict[K, int] = OrderedDict()  # the same keys, oldest first (changed under the lock)
        # The hit path: the dict's own get (never replaced: clear() empties the same dict).
        object.__setattr__(self, "get", self._data.get)
        self._lock = threading.Lock()
        self._nbytes = 0
        _ALL.add(self)

    def __repr__(self) -> str:
        used = f"entries={len(self._data)}/{self.max_entries}, bytes={self._nbytes}/{self.max_bytes}"
        return f"BoundedCache({self.name!r}, {used})"

    def __len__(self) -> int:
        return len(self._data)

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._data))

    def __contains__(self, key: object) -> bool:
        return key in self._data

    @property
    def nbytes(self) -> int:
        """Approximate bytes of the keys and values held now (never above ``max_bytes``)."""
        return self._nbytes

    if TYPE_CHECKING:  # at run time ``get`` is the dict's own method, set in __init__

        @overload
        def get(self, key: K) -> V | None: ...
        @overload
        def get(self, key: K, default: D) -> V | D: ...
        def get(self, key: K, default: Any = None) -> Any:
            """The value under ``key``, or ``default`` (None)."""

    def put(self, key: K, value: V) -> bool:
        """Remember ``value`` under ``key``, evicting the oldest entries; False when it is too big to keep."""
        size = self._sizeof(key) + self._sizeof(value)
        with self._lock:
            data, sizes = self._data, self._sizes
            old = sizes.pop(key, None)  # an older value under this key never outlives a newer one
            if old is not None:
                del data[key]
                self._nbytes -= old
            if size > self.max_entry_bytes:
                return False
            while sizes and (len(sizes) >= self.max_entries or self._nbytes + size > self.max_bytes):
                oldest, oldest_size = sizes.popitem(last=False)
                del data[oldest]
                self._nbytes -= oldest_size
            sizes[key] = size
            data[key] = value
            self._nbytes += size
        return True

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._data.clear()
            self._sizes.clear()
            self._nbytes = 0


def bounded_caches() -> Iterator[BoundedCache[Any, Any]]:
    """Every live :class:`BoundedCache` (for tests and diagnostics: names, sizes, bounds).

    Example::

        >>> all(c.nbytes <= c.max_bytes for c in bounded_caches())
        True
    """
    return iter(list(_ALL))
