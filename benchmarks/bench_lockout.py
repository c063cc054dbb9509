"""Benchmark the lockout's check-and-reserve: one atomic script on the real Redis vs one Redis PING.

Cases, in interleaved shuffled rounds with medians (see _harness.py):

- Redis: ``PING`` through redis-py's command path (the baseline), four floors sent the way the store sends its
  scripts, on the keys of a decision (a PING, an empty EVALSHA, and a script running the same commands as a
  reserve with no logic, on one account's keys and on a fresh account's keys each call, as the decisions run),
  ``Lockout.record_failure``
  (check and reserve: the whole Python path plus the script) and ``Lockout.check`` (the same script, read
  only), each on a fresh account so no call is short-circuited by a lock.
- Memory store: the same two calls, in µs.

Round trips are counted from ``INFO commandstats`` deltas (EVALSHA + EVAL calls per decision; the commands a
script runs inside the server are also listed there and are not round trips). The Redis server is shared, so
other clients may add to the deltas: the figure is an upper bound.

Usage::

    python benchmarks/bench_lockout.py            # full run
    python benchmarks/bench_lockout.py --quick    # smoke run

Results are printed and written to benchmarks/results/lockout.json (and lockout.md).
"""

from __future__ import annotations

import argparse
import itertools
import os
import uuid
from typing import Any

from _harness import compare, save, table

from backend_guard.lockout import Lockout
from backend_guard.storage import MemoryStore, RedisStore, Script

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
IP = "203.0.113.7"


def _unused(*args: Any) -> Any:  # the floors only run on Redis
    raise NotImplementedError


def script_calls(client: Any) -> int:
    stats = client.info("commandstats")
    return sum(int(stats.get(name, {}).get("calls", 0)) for name in ("cmdstat_evalsha", "cmdstat_eval"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few rounds, few calls")
    args = parser.parse_args()
    rounds, calls = (3, 200) if args.quick else (15, 2000)
    payload: dict[str, Any] = {"rounds": rounds, "calls_per_round": calls}
    md = ["# Lockout benchmark\n"]

    prefix = f"bgbench:{uuid.uuid4().hex[:8]}"
    store = RedisStore(REDIS_URL, prefix=prefix, socket_timeout=2, connect_timeout=2)
    lock = Lockout(store=store, max_failures=5)
    client = store.client
    names = (f"user{i}" for i in itertools.count())
    try:
        # Check the cases really do the work before timing them.
        assert client.ping() is True
        status = lock.record_failure("probe", IP)
        assert status.remaining == 4, status
        assert lock.check("probe", IP).remaining == 4

        n = 500 if args.quick else 2000
        before = script_calls(client)
        for _ in range(n):
            lock.record_failure(next(names), IP)
        per_decision = (script_calls(client) - before) / n
        payload["script_round_trips_per_reserve"] = round(per_decision, 3)

        # Floors, sent the way the store sends its scripts (straight on a pooled connection, see
        # storage/_redis_direct.py), with the keys of a real decision: a PING (the round trip itself), an EVALSHA
        # that does nothing, and one running the very commands of a check-and-reserve of a fresh account (TIME,
        # ZSCORE, MGET of the pair's and the account's keys, SET ... PX of both: the account's key holds the
        # account-wide scope and the ceiling) with no logic: what any atomic reserve of three counters costs here.
        # The baseline is a PING through redis-py's command path on the store's client, as an application sends
        # one.
        probe_keys = lock._plan("floor-probe", IP).keys
        empty = Script(name="floor-empty", lua="return 1", memory=_unused)
        same_commands = Script(
            name="floor-same-commands",
            lua="local t = redis.call('TIME') redis.call('ZSCORE', KEYS[3], ARGV[1]) "
            "redis.call('MGET', KEYS[1], KEYS[2]) "
            "redis.call('SET', KEYS[1], ARGV[2], 'PX', 60000) redis.call('SET', KEYS[2], ARGV[3], 'PX', 60000) "
            "return {1, 0, 0, 0, 7, 4, 0, 0}",
            memory=_unused,
        )
        member, value, account_value = "0" * 32, "0" * 40, "0" * 80
        # The same commands on a fresh account's keys each call, as the decisions below run (Redis then creates two
        # keys a call): their plans made before timing, so only the round trip and the server's work are measured.
        fresh = iter([lock._plan(f"floor-{i}", IP).keys for i in range(rounds * calls + calls // 10 + 10)])
        call = store._call  # noqa: SLF001 - the benchmark measures the store's own send path
        cases = {
            "redis PING": lambda: client.ping(),
            "floor: PING on the store's own path": lambda: call("PING"),
            "floor: EVALSHA of `return 1` (same keys)": lambda: store.run(empty, probe_keys, []),
            "floor: EVALSHA of the same commands, no logic": lambda: store.run(
                same_commands, probe_keys, [member, value, account_value]
            ),
            "floor: the same commands on a fresh account's keys": lambda: store.run(
                same_commands, next(fresh), [member, value, account_value]
            ),
            "check+reserve (record_failure)": lambda: lock.record_failure(next(names), IP),
            "check (read only)": lambda: lock.check(next(names), IP),
        }
        res = compare(cases, "redis PING", rounds=rounds, calls=calls)
        payload["redis"] = res
        title = "Redis: one decision vs one PING through redis-py (fresh account each call)"
        md.append(table(res, "redis PING", title))
        md.append(f"\nScript calls (EVALSHA/EVAL) per check+reserve, from INFO commandstats: {per_decision:.3f}\n")
    finally:
        batch = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for i in range(0, len(batch), 1000):
            client.delete(*batch[i : i + 1000])
        store.close()

    mem = Lockout(store=MemoryStore(max_keys=1_000_000), max_failures=5)
    assert mem.record_failure("probe", IP).remaining == 4
    mcases = {
        "check (read only)": lambda: mem.check(next(names), IP),
        "check+reserve (record_failure)": lambda: mem.record_failure(next(names), IP),
    }
    res = compare(mcases, "check (read only)", rounds=rounds, calls=calls)
    payload["memory"] = res
    md.append(table(res, "check (read only)", "Memory store: µs per decision"))

    text = "\n".join(md)
    print(text)
    path = save("lockout", payload, text)
    print(f"written {path}")


if __name__ == "__main__":
    main()
