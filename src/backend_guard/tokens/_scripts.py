"""The atomic store operations of refresh rotation and one-time tokens: Lua for Redis, Python for memory.

Each :class:`~backend_guard.storage.Script` here is one round trip and the only place its decision is made.
The Python bodies mirror the Lua bodies line for line; one test suite runs over both backends.

Data model (all keys of one subject share a Redis Cluster hash tag, the subject):

- ``tok:fam:{sub}:<sid>``: a hash per token family (one login): ``cur`` (SHA-256 digest of the current
  refresh token), ``prev`` (the previous digest), ``pu`` (end of its grace window, ms), ``pd`` ("1" once the
  grace replay was used), ``sealed`` (the successor, encrypted under a key derived from the previous token),
  ``lu`` (the last issue or rotation, ms: the idle timeout's clock), ``dv`` (the login's ``device`` or
  ``user_agent`` claim when it had one, for operators' listings).
  A family revoked for reuse keeps only ``rv`` until its expiry (a revocation leaves it). The key expires at
  the family's absolute expiry: rotation never touches the TTL.
- ``tok:sub:{sub}``: the set of the subject's family ids, for "log out everywhere".
- ``ot:<purpose>:<nonce>``: a one-time token already consumed, until the token could no longer verify.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ..storage import MemoryView, Script, Store

__all__ = [
    "ALIVE",
    "CONSUME_ONCE",
    "ISSUE",
    "NOT_CONSUMED",
    "REVOKE_FAMILY",
    "REVOKE_SUBJECT",
    "ROTATE",
    "RotateReply",
    "family_keys",
    "text",
]


def family_keys(store: Store, subject: str, sid: str) -> tuple[str, str, str]:
    """The keys of the family ``sid`` of ``subject`` (a ``sub`` claim): (its hash, the subject's set, the prefix
    of every family key of the subject, to which a family id is appended).

    Example::

        fam_key, sub_key, fam_prefix = family_keys(store, "user-42", sid)
    """
    fam_prefix = store.key("tok", "fam", tag=subject) + ":"
    return fam_prefix + sid, store.key("tok", "sub", tag=subject), fam_prefix


def text(value: Any) -> str:
    """A reply value as ``str`` (Redis replies are bytes, memory replies are already str)."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return "" if value is None else str(value)


# -- issue: a new family ---------------------------------------------------------------------------------

_ISSUE_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'cur', ARGV[1], 'prev', '', 'pu', '0', 'pd', '1', 'sealed', '', 'lu', tostring(now))
if ARGV[5] and ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'dv', ARGV[5]) end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
local members = redis.call('SMEMBERS', KEYS[2])
for _, sid in ipairs(members) do
  if redis.call('EXISTS', ARGV[4] .. sid) == 0 then redis.call('SREM', KEYS[2], sid) end
end
redis.call('SADD', KEYS[2], ARGV[3])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return 1
"""


def _issue_memory(db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> Any:
    fam_key, sub_key = keys
    digest, ttl_ms, sid, fam_prefix = str(args[0]), float(args[1]), str(args[2]), str(args[3])
    now = str(int(db.now_ms))
    fam = {"cur": digest, "prev": "", "pu": "0", "pd": "1", "sealed": "", "lu": now}
    if len(args) > 4 and args[4]:
        fam["dv"] = str(args[4])
    db.set(fam_key, fam, px=ttl_ms)
    members = set(db.get(sub_key, set()))
    members = {m for m in members if db.exists(fam_prefix + m)}
    members.add(sid)
    ttl = db.pttl(sub_key)
    db.set(sub_key, members, keepttl=True)
    if ttl < ttl_ms:
        db.pexpire(sub_key, ttl_ms)
    return 1


ISSUE = Script(name="bg_tokens_issue", lua=_ISSUE_LUA, memory=_issue_memory)


# -- rotate: one step of a family (Lua in storage/lua/tokens_rotate.lua) -----------------------------------


def _forget_family(db: MemoryView, sub_key: str, sid: str) -> None:
    """``SREM KEYS[2] sid``: the family is no longer one of the subject's."""
    members = db.get(sub_key)
    if members is not None:
        db.set(sub_key, set(members) - {sid}, keepttl=True)


def _idled_out(fam: dict[str, Any], now: int, idle: int) -> bool:
    """The idle timeout is on and the family was last issued or rotated longer ago than it."""
    return idle > 0 and "lu" in fam and now - int(fam["lu"]) > idle


def _grace_replay(fam: dict[str, Any], old: str, now: int) -> bool:
    """``old`` is the predecessor, its one replay not used yet, a successor sealed, within the grace window."""
    return bool(fam["prev"] == old and fam["pd"] == "0" and fam["sealed"] and now < int(fam["pu"]))


def _rotate_memory(db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> Any:
    fam_key, sub_key = keys
    old, new, sealed, grace_ms, sid = str(args[0]), str(args[1]), str(args[2]), float(args[3]), str(args[4])
    idle = int(args[5])
    fam = db.get(fam_key)
    if fam is not None and "rv" in fam:
        return [3]
    if fam is None or "cur" not in fam:
        return [0]
    now = int(db.now_ms)
    if _idled_out(fam, now, idle):
        db.delete(fam_key)
        _forget_family(db, sub_key, sid)
        return [4]
    if fam["cur"] == old:
        fam.update(
            {"cur": new, "prev": old, "pu": str(int(now + grace_ms)), "pd": "0", "sealed": sealed, "lu": str(now)}
        )
        db.set(fam_key, fam, keepttl=True)
        return [1]
    if _grace_replay(fam, old, now):
        stored = fam["sealed"]
        fam.update({"pd": "1", "sealed": ""})
        db.set(fam_key, fam, keepttl=True)
        return [2, stored]
    db.set(fam_key, {"rv": "1"}, keepttl=True)
    _forget_family(db, sub_key, sid)
    return [3]


class RotateReply(NamedTuple):
    """The rotate script's reply, by name.

    ``outcome``: 0 the family is gone, 1 rotated, 2 the predecessor's grace replay (``sealed`` holds the
    encrypted successor), 3 reuse (the family is revoked), 4 the family expired for inactivity.

    Example::

        reply = RotateReply.from_reply(store.run(ROTATE, keys, args))
        if reply.outcome == 2:
            blob = text(reply.sealed)
    """

    outcome: int
    sealed: Any  # outcome 2 only (else None), as the store sent it: bytes from Redis, str from memory (see text)

    @classmethod
    def from_reply(cls, raw: Sequence[Any]) -> RotateReply:
        """The reply of either twin."""
        return cls(int(raw[0]), raw[1] if len(raw) > 1 else None)


ROTATE = Script(name="bg_tokens_rotate", lua_file=Path(__file__).with_name("rotate.lua"), memory=_rotate_memory)


# -- revoke one family (log out) ---------------------------------------------------------------------------

# A family revoked for reuse is already ended: its tombstone (``rv``) stays until the family's expiry, so that a
# later presentation of its tokens is still reported as reuse (the evidence of a theft), and nothing ends (0).
_REVOKE_FAMILY_LUA = """
local n = 0
if redis.call('HEXISTS', KEYS[1], 'rv') == 0 then n = redis.call('DEL', KEYS[1]) end
redis.call('SREM', KEYS[2], ARGV[1])
return n
"""


def _revoke_family_memory(db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> Any:
    fam = db.get(keys[0])
    n = 0
    if fam is None or "rv" not in fam:
        n = db.delete(keys[0])
    _forget_family(db, keys[1], str(args[0]))
    return n


REVOKE_FAMILY = Script(name="bg_tokens_revoke_family", lua=_REVOKE_FAMILY_LUA, memory=_revoke_family_memory)


# -- revoke every family of a subject (log out everywhere) ---------------------------------------------------

_REVOKE_SUBJECT_LUA = """
local n = 0
for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  n = n + redis.call('DEL', ARGV[1] .. sid)
end
redis.call('DEL', KEYS[1])
return n
"""


def _revoke_subject_memory(db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> Any:
    n = 0
    for sid in db.get(keys[0], set()):
        n += db.delete(str(args[0]) + sid)
    db.delete(keys[0])
    return n


REVOKE_SUBJECT = Script(name="bg_tokens_revoke_subject", lua=_REVOKE_SUBJECT_LUA, memory=_revoke_subject_memory)


# -- is a family still alive (revocation checking of access tokens) -----------------------------------------

_ALIVE_LUA = "return redis.call('HEXISTS', KEYS[1], 'cur')"


def _alive_memory(db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> Any:
    fam = db.get(keys[0])
    return 1 if fam is not None and "cur" in fam else 0


ALIVE = Script(name="bg_tokens_alive", lua=_ALIVE_LUA, memory=_alive_memory)


# -- one-time tokens: mark a nonce used, once ---------------------------------------------------------------

_CONSUME_ONCE_LUA = """
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then return 1 end
return 0
"""


def _consume_once_memory(db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> Any:
    if db.exists(keys[0]):
        return 0
    db.set(keys[0], "1", px=float(args[0]))
    return 1


CONSUME_ONCE = Script(name="bg_onetime_consume", lua=_CONSUME_ONCE_LUA, memory=_consume_once_memory)


# The same marker, read only: 1 while the nonce is unused (OneTimeTokens.peek). Same arguments as CONSUME_ONCE.
_NOT_CONSUMED_LUA = "return 1 - redis.call('EXISTS', KEYS[1])"


def _not_consumed_memory(db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> Any:
    return 0 if db.exists(keys[0]) else 1


NOT_CONSUMED = Script(name="bg_onetime_peek", lua=_NOT_CONSUMED_LUA, memory=_not_consumed_memory)
