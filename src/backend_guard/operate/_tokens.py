"""Token families: list a subject's live refresh-token families (logins) and revoke one or all of them.

The key layout is the rotation's (``tokens/_scripts.py``: a hash per family ``tok:fam:{sub}:<sid>`` holding
``lu``, the last issue or rotation, and expiring at the family's absolute end; the set ``tok:sub:{sub}`` of the
subject's family ids). Listing is one read-only script per page: the subject's ids in order, from the cursor on,
at most ``limit`` of them read. Revoking runs the token manager's own scripts; no signing key is needed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ..exceptions import ConfigurationError
from ..storage import MemoryView, Script, Store
from ..tokens._claims import subject_claim
from ..tokens._scripts import REVOKE_FAMILY, REVOKE_SUBJECT, family_keys, text
from ._model import FamilyEntry, Page, audit, check_limit, digest, listed

__all__ = ["FAMILIES", "Families", "family_page"]

_FAMILIES_LUA = """
local members = redis.call('SMEMBERS', KEYS[1])
table.sort(members)
local out = {}
local limit = tonumber(ARGV[3])
for _, sid in ipairs(members) do
  if sid > ARGV[2] then
    local f = redis.call('HMGET', ARGV[1] .. sid, 'cur', 'lu', 'dv')
    if f[1] then
      if #out >= limit then return {1, out} end
      out[#out + 1] = {sid, f[2] or '', redis.call('PTTL', ARGV[1] .. sid), f[3] or ''}
    end
  end
end
return {0, out}
"""


def _families_memory(db: MemoryView, keys: Sequence[str], args: Sequence[Any]) -> Any:
    prefix, after, limit = str(args[0]), str(args[1]), int(args[2])
    out: list[list[Any]] = []
    for sid in sorted(db.get(keys[0], set())):
        fam = db.get(prefix + sid) if sid > after else None
        if fam is not None and "cur" in fam:
            if len(out) >= limit:
                return [1, out]
            out.append([sid, fam.get("lu", ""), db.pttl(prefix + sid), fam.get("dv", "")])
    return [0, out]


#: A page of a subject's live families: KEYS[1] the subject's set; ARGV the family key prefix, the cursor (the
#: last id of the page before, "" for the first) and the page size. Reply: [more (0/1), [[id, lu, pttl], ...]].
FAMILIES = Script(name="bg_operate_families", lua=_FAMILIES_LUA, memory=_families_memory)


def family_page(reply: Any, now: float, refresh_ttl: float | None) -> Page[FamilyEntry]:
    """The page of a :data:`FAMILIES` reply (pure: ``now`` in seconds; ``refresh_ttl`` gives ``created``).

    Example::

        family_page(store.run(FAMILIES, keys, args), time.time(), 14 * 86400)
    """
    more, rows = int(reply[0]), reply[1]
    entries = []
    for raw_sid, raw_lu, pttl, raw_device in rows:
        expires = now + int(pttl) / 1000.0
        last = text(raw_lu)
        entries.append(
            FamilyEntry(
                text(raw_sid),
                expires - refresh_ttl if refresh_ttl is not None else None,
                int(last) / 1000.0 if last else None,
                expires,
                text(raw_device) or None,
            )
        )
    return Page(tuple(entries), entries[-1].family if more and entries else None)


class Families:
    """The refresh-token families of subjects on a store (the token manager's), listed by page and revoked.

    ``refresh_ttl`` (the token manager's) lets a listing say when each family was created.

    Example::

        families = Families(store, refresh_ttl=14 * 86400)
        page = families.list("user-42")
        families.revoke("user-42", by="jane")            # every login of the subject
    """

    def __init__(self, store: Store, *, refresh_ttl: float | None = None, clock: Callable[[], float] = time.time):
        self.store = store
        self.refresh_ttl = refresh_ttl
        self.clock = clock

    def _list_call(self, subject: str | int, limit: int, cursor: str | None) -> tuple[Sequence[str], Sequence[Any]]:
        _, sub_key, prefix = family_keys(self.store, subject_claim(subject), "")
        return [sub_key], [prefix, listed("cursor", cursor) if cursor else "", check_limit(limit)]

    def list(self, subject: str | int, *, limit: int = 100, cursor: str | None = None) -> Page[FamilyEntry]:
        """One page of the live families of ``subject``, by family id.

        Example::

            page = families.list("user-42", limit=20)
        """
        keys, args = self._list_call(subject, limit, cursor)
        return family_page(self.store.run(FAMILIES, keys, args), self.clock(), self.refresh_ttl)

    async def alist(self, subject: str | int, *, limit: int = 100, cursor: str | None = None) -> Page[FamilyEntry]:
        """Async twin of :meth:`list`.

        Example::

            page = await families.alist("user-42")
        """
        keys, args = self._list_call(subject, limit, cursor)
        return family_page(await self.store.arun(FAMILIES, keys, args), self.clock(), self.refresh_ttl)

    def _revoke_call(self, subject: str | int, family: str | None) -> tuple[Script, Sequence[str], Sequence[Any]]:
        sub = subject_claim(subject)
        if family is None:
            _, sub_key, prefix = family_keys(self.store, sub, "")
            return REVOKE_SUBJECT, [sub_key], [prefix]
        if not family:
            raise ConfigurationError("family must be a family id from a listing.")
        fam_key, sub_key, _ = family_keys(self.store, sub, listed("family", family))
        return REVOKE_FAMILY, [fam_key, sub_key], [family]

    def revoke(self, subject: str | int, family: str | None = None, *, by: str | None = None) -> int:
        """End the login ``family`` of ``subject`` (None: every one of its logins); how many ended.

        Example::

            families.revoke("user-42", page.items[0].family, by="jane")
        """
        script, keys, args = self._revoke_call(subject, family)
        ended = int(self.store.run(script, keys, args))
        audit(by, "tokens.revoke", digest(subject_claim(subject)), family=family, revoked=ended)
        return ended

    async def arevoke(self, subject: str | int, family: str | None = None, *, by: str | None = None) -> int:
        """Async twin of :meth:`revoke`.

        Example::

            await families.arevoke("user-42")
        """
        script, keys, args = self._revoke_call(subject, family)
        ended = int(await self.store.arun(script, keys, args))
        audit(by, "tokens.revoke", digest(subject_claim(subject)), family=family, revoked=ended)
        return ended
