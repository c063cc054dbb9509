"""The lockout's identifiers and storage keys: who an attempt counts against, and where that is stored.

What must live here: the keyed hash (BLAKE2b in MAC mode) that stands for an account or an address in storage
keys and audit events, the key layout (per account: the pair keys, the account's ``ac`` value and its
remembered addresses ``g``; per address: ``ip``), the bounded caches that make a repeated ``(account,
address)`` cost one lookup, and reading a key back into a :class:`~backend_guard.lockout.LockRecord`.
Names never reach a key in clear: an account and an address are both digests, under one hash tag per account
so that all of an account's keys share a Redis Cluster slot.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import sys
from typing import Any

from .._cache import BoundedCache
from ..clientip import address_bucket
from ..exceptions import ConfigurationError
from ..storage import Store
from ..storage.base import glob_escape
from ._attempt import normalize_identifier
from ._status import LockRecord

__all__ = ["CACHED_LEN", "PLAN_BYTES", "PLAN_CACHE", "KeyPlanner", "Plan", "mac_key", "records_of"]

PLAN_CACHE = 2048  # (account, address) plans and address digests kept per Lockout
CACHED_LEN = 256  # identifiers and addresses longer than this are never cached: entries are bounded in size too
PLAN_BYTES = 4 << 20  # a plan of two 256-character names and its keys is about 1.5 KB
#: The key without ``secret=`` on a store shared between processes (Redis): public, the same in every process
#: (their counters must meet), so a warning says the stored ids can be reversed by hashing a list of names.
_DEFAULT_KEY = b"backend_guard.lockout.v1"
#: The key without ``secret=`` on an in-process store: random, drawn once per process, so neither the stored
#: ids nor the digests in logs and events can be reversed by anyone outside the process.
_PROCESS_KEY = secrets.token_bytes(32)
_log = logging.getLogger("backend_guard.lockout")


class Plan:
    """The keys and identifiers of one (account, address): made once, cached, never changed.

    A plain slotted class rather than a frozen dataclass: one is made for every new (account, address), and a
    frozen dataclass's ``__init__`` costs about twice as much (it sets each field through ``object.__setattr__``).

    Example::

        plan = planner.plan("alice", "203.0.113.7")
        store.run(reserve, plan.keys, [plan.member, 1, plan.named])
    """

    __slots__ = ("account", "account_id", "address", "keys", "member", "named")

    def __init__(self, keys: list[str], named: str, member: str, account_id: str, address: str, account: str) -> None:
        self.keys = keys
        self.named = named  # "1", or "0" for an empty identifier (counted per pair and address only)
        self.member = member
        self.account_id = account_id
        self.address = address
        self.account = account

    @property
    def address_id(self) -> str | None:
        """The keyed hash of the address bucket (the end of the pair key), None when the attempt named none.

        Example::

            planner.plan("alice", "203.0.113.7").address_id   # 32 hex digits
        """
        return self.keys[0].rpartition(":p:")[2] if self.address else None

    def __sizeof__(self) -> int:
        # Everything a plan holds is its own: the store keys, the digests, the address and the identifier, every
        # one an exact str (whose own __sizeof__ is what sys.getsizeof answers). A plan is sized once, when a new
        # (account, address) is cached: the path of every guess in a flood of them.
        keys = self.keys
        strings = (*keys, self.named, self.member, self.account_id, self.address, self.account)
        return object.__sizeof__(self) + sys.getsizeof(keys) + sum(map(str.__sizeof__, strings))


class KeyPlanner:
    """The digests and storage keys of one lockout's (account, address) pairs, with their bounded caches.

    ``key`` is the MAC key (:func:`mac_key`); ``address_scope`` adds the address-wide key to every plan; the
    caches are the lockout's own (``plans`` keyed by the raw (account, address), ``addr_ids`` by address bucket).

    Example::

        planner = KeyPlanner(store, "lockout", mac_key(secret), 64, False, plans, addr_ids)
        planner.plan("alice", "203.0.113.7").keys   # [pair, account, good addresses]
    """

    __slots__ = ("_addr_ids", "_address_scope", "_base", "_ipv6_prefix", "_macs", "_namespace", "_plans", "_store")

    def __init__(
        self,
        store: Store,
        namespace: str,
        key: bytes,
        ipv6_prefix: int,
        address_scope: bool,
        plans: BoundedCache[tuple[str | bytes, str | None], Plan],
        addr_ids: BoundedCache[str, str],
    ) -> None:
        self._store = store
        self._namespace = namespace
        self._macs = {d: hashlib.blake2b(digest_size=16, key=key, person=d) for d in (b"account", b"address")}
        self._ipv6_prefix = ipv6_prefix
        self._address_scope = address_scope
        self._plans = plans
        self._addr_ids = addr_ids
        self._base = store.key(namespace)

    def digest(self, domain: bytes, text: str) -> str:
        """The keyed digest of ``text`` in ``domain`` (``b"account"`` or ``b"address"``), 32 hex digits.

        Example::

            planner.digest(b"account", "alice")
        """
        # Keyed BLAKE2b (RFC 7693's MAC mode, a PRF like HMAC) with a 128-bit tag; the domain ("account",
        # "address") is its personalisation, so an account and an address with the same text never share a digest.
        # Each domain's keyed state is made once and copied (the key fills a whole block: half the cost of a digest).
        mac = self._macs[domain].copy()
        mac.update(text.encode("utf-8", "surrogatepass"))
        return mac.hexdigest()

    def account_id(self, account: str | bytes) -> str:
        """The digest that stands for ``account`` (normalised first) in keys, events and records.

        Example::

            planner.account_id("Alice") == planner.account_id(" alice ")   # True
        """
        return self.digest(b"account", normalize_identifier(account))

    def plan(self, account: str | bytes, ip: str | None) -> Plan:
        """Keys and identifiers of ``(account, ip)``; cached (bounded), as a client usually retries as itself.

        Example::

            keys = planner.plan("alice", "203.0.113.7").keys
        """
        kind = type(account)
        if (kind is not str and kind is not bytes) or len(account) > CACHED_LEN or (ip and len(ip) > CACHED_LEN):
            # Not cached: a long identifier (2048 entries of a 1 MB name would hold gigabytes), and anything but a
            # plain str or bytes (a bytearray is unhashable; equal keys such as 1 and True normalise differently).
            return self._new_plan(account, ip)
        cache_key = (account, ip)
        plan = self._plans.get(cache_key)
        if plan is None:
            plan = self._new_plan(account, ip)
            self._plans.put(cache_key, plan)  # bounded: identifiers come from clients
        return plan

    def _new_plan(self, account: str | bytes, ip: str | None) -> Plan:
        name = normalize_identifier(account)
        # str.strip: an exact str even from a str subclass (the plan's strings are sized as exact strs).
        address = _bucket(str.strip(ip), self._ipv6_prefix) if ip else ""
        aid = self.digest(b"account", name)
        addr_id = self._address_id(address)
        # Hex digests are key-safe as they are, so the keys are formatted directly: the same strings as
        # store.key(ns, "p", addr_id, tag=aid) and so on, without escaping work on every decision.
        base = f"{self._base}:{{{aid}}}:"
        # Pair, account (its account-wide scope and its ceiling in one value: named "ac", not the "a" and "c" of
        # the layout before, so that during a rolling upgrade old and new workers never overwrite each other's
        # values), good addresses.
        keys = [base + "p:" + addr_id, base + "ac", base + "g"]
        if self._address_scope:
            keys.append(f"{self._base}:ip:{addr_id}")
        # An empty identifier is nobody's account: it is counted per address only, so it can never become a
        # lock shared by every client that sends an empty name.
        return Plan(keys, "1" if name else "0", addr_id if name and address else "", aid, address, name)

    def _address_id(self, address: str) -> str:
        """The digest of an address bucket; cached (bounded) unless its text is long."""
        addr_id = self._addr_ids.get(address)
        if addr_id is None:
            addr_id = self.digest(b"address", address)
            if len(address) <= CACHED_LEN:
                self._addr_ids.put(address, addr_id)
        return addr_id

    def unlock_keys(self, account: str | bytes | None, ip: str | None, found: list[str]) -> tuple[list[str], Plan]:
        """The keys an unlock deletes, and the plan its event names: the address-wide key (``account`` None), the
        pair's (with ``ip``), or the account's value and its pairs ``found`` by :meth:`pair_pattern`.

        Example::

            keys, plan = planner.unlock_keys("alice", None, store.scan(planner.pair_pattern("alice")))
        """
        plan = self.plan(account or "", ip)
        if account is None:
            return ([plan.keys[3]] if len(plan.keys) > 3 else []), plan
        if ip is not None:
            return [plan.keys[0]], plan
        return [plan.keys[1], *found], plan

    def pair_pattern(self, account: str | bytes) -> str:
        """The SCAN pattern of every pair key of ``account`` (one per address it failed from).

        Example::

            store.scan(planner.pair_pattern("alice"))
        """
        aid = self.account_id(account)
        return glob_escape(self._store.key(self._namespace, "p", "x", tag=aid)[:-1]) + "*"

    def lock_pattern(self, account: str | bytes | None = None, ip: str | None = None) -> str:
        """The SCAN pattern of every key that may hold a lock a listing reports (pair and account values), or
        only those of ``account`` and/or the pair keys of the address ``ip`` (so that a listing of one account
        or address finds its keys however many other keys the store holds).

        Example::

            store.scan(planner.lock_pattern())
        """
        base = glob_escape(f"{self._store.prefix}:{self._namespace}:")
        tag = "{*}" if account is None else "{" + self.account_id(account) + "}"  # hex digests: glob-safe
        if ip is None:
            return base + tag + ":[ap]*"
        return base + tag + ":p:" + self._address_id(_bucket(str.strip(ip), self._ipv6_prefix) if ip else "")


def records_of(key: str, reply: Any) -> list[LockRecord]:
    """The live locks in one key's PEEK reply: the pair's, or the account's account-wide and ceiling ones.

    Example::

        records_of(key, store.run(PEEK, [key], []))
    """
    head, _, rest = key.rpartition("}:")
    aid = head.rsplit("{", 1)[-1]
    scopes = _record_scopes(rest)
    if not isinstance(reply, list) or len(reply) != len(scopes):
        return []
    address_id = rest[2:] if rest.startswith("p:") else None
    return [
        LockRecord(aid, scope, int(left) / 1000.0, address_id)
        for scope, left in zip(scopes, reply, strict=True)
        if int(left) > 0
    ]


def _record_scopes(rest: str) -> tuple[str, ...]:
    """The scopes whose locks a key holds, from the key's end: the account's value, a pair's, or none."""
    if rest == "ac":
        return ("account", "ceiling")
    return ("pair",) if rest.startswith("p:") else ()


def mac_key(secret: str | bytes | None, shared: bool = True) -> bytes:
    """The BLAKE2b key of ``secret`` (already checked to be a string or bytes): at least 16 bytes, at most 64.
    Without a secret: a random key drawn once per process for an in-process store (``shared=False``), else a
    public key, with a warning (the identifiers in a shared store must hash alike in every process).

    Example::

        planner = KeyPlanner(store, "lockout", mac_key(settings.LOCKOUT_KEY), ...)
    """
    if secret is None:
        if not shared:
            return _PROCESS_KEY
        _log.warning(
            "Lockout on a shared store without secret=: account names are hashed with a public key in the store,"
            " logs and events, so they can be reversed by hashing a list of names. Set secret= (16+ bytes, one per"
            " deployment; BACKEND_GUARD_LOCKOUT__SECRET in the settings)."
        )
        return _DEFAULT_KEY
    key = secret.encode("utf-8") if isinstance(secret, str) else bytes(secret)
    if len(key) < 16:
        raise ConfigurationError("secret must be at least 16 bytes.")
    if len(key) > 64:  # BLAKE2b takes keys of at most 64 bytes: a longer secret is hashed to 64
        key = hashlib.blake2b(key, digest_size=64, person=b"lockout.key").digest()
    return key


_BUCKETS: BoundedCache[tuple[str, int], str] = BoundedCache("lockout.buckets", max_entries=4096, max_bytes=1 << 20)


def _bucket(ip: str, ipv6_prefix: int) -> str:
    found = _BUCKETS.get((ip, ipv6_prefix))
    if found is None:
        found = address_bucket(ip, ipv6_prefix)
        _BUCKETS.put((ip, ipv6_prefix), found)  # bounded: addresses come from clients
    return found
