"""Benchmark tokens: ``verify_access`` against a raw PyJWT decode, and ``rotate`` on the real Redis.

Cases, in interleaved shuffled rounds with medians (see _harness.py):

- For each algorithm (EdDSA, ES256, RS256, HS256, HS384, HS512): ``jwt.decode`` with the same key object,
  algorithm, audience and issuer (PyJWT checking exp/nbf/iat itself) as the baseline, and
  ``TokenManager.verify_access`` (length, header, ``typ``, ``kid``, signature, claims, time with the leeway).
  The target is a ratio of at most 1.10.
- Redis: ``PING`` (the floor of any round trip) against ``TokenManager.rotate`` (verify the refresh token,
  sign a new pair, seal the grace copy, one script). Round trips per rotation are counted from
  ``INFO commandstats`` deltas (EVALSHA + EVAL; the commands a script runs inside the server are listed there
  too and are not round trips). The server is shared, so other clients may add to the delta: an upper bound.

Usage::

    python benchmarks/bench_tokens.py            # full run
    python benchmarks/bench_tokens.py --quick    # smoke run

Results are printed and written to benchmarks/results/tokens.json (and tokens.md).
"""

from __future__ import annotations

import argparse
import os
import uuid
from typing import Any

import jwt
from _harness import compare, save, table

from backend_guard._keys import generate_key
from backend_guard.storage import RedisStore
from backend_guard.tokens import TokenManager

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
ISS = "https://auth.example"
AUD = "https://api.example"
ALGORITHMS = ["EdDSA", "ES256", "RS256", "HS256", "HS384", "HS512"]


def script_calls(client: Any) -> int:
    stats = client.info("commandstats")
    return sum(int(stats.get(name, {}).get("calls", 0)) for name in ("cmdstat_evalsha", "cmdstat_eval"))


def bench_verify(rounds: int, calls: int, md: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for alg in ALGORITHMS:
        material, _ = generate_key(alg)
        tm = TokenManager(material, alg, issuer=ISS, audience=AUD)
        token = tm.issue("user-42", {"scope": "read write"}).access_token
        key = tm.keys.keys[0]
        algorithms = [alg]

        def raw(token: str = token, key: Any = key.verifying, algorithms: list[str] = algorithms) -> Any:
            return jwt.decode(token, key, algorithms=algorithms, audience=AUD, issuer=ISS)

        def ours(token: str = token, tm: TokenManager = tm) -> Any:
            return tm.verify_access(token)

        assert raw()["sub"] == ours()["sub"] == "user-42"
        n = calls if alg.startswith("HS") else max(50, calls // 4)
        results = compare({"jwt.decode": raw, "verify_access": ours}, "jwt.decode", rounds=rounds, calls=n)
        out[alg] = results
        md.append(table(results, "jwt.decode", f"verify_access vs jwt.decode, {alg}"))
        r = results["verify_access"]
        print(
            f"{alg:6s} verify_access {r.median_us:8.2f} µs  jwt.decode {results['jwt.decode'].median_us:8.2f} µs  "
            f"ratio {r.ratio:.3f}"
        )
    return out


def bench_rotate(rounds: int, calls: int, md: list[str]) -> dict[str, Any]:
    prefix = f"bgbench:{uuid.uuid4().hex[:8]}"
    store = RedisStore(REDIS_URL, prefix=prefix, socket_timeout=2, connect_timeout=2)
    material, _ = generate_key("EdDSA")
    tm = TokenManager(material, "EdDSA", issuer=ISS, audience=AUD, store=store, grace_window=10)
    client = store.client
    state = {"token": tm.issue("bench-user").refresh_token}

    def rotate() -> None:
        state["token"] = tm.rotate(state["token"]).refresh_token

    try:
        assert client.ping() is True
        before = script_calls(client)
        n = 200
        for _ in range(n):
            rotate()
        round_trips = (script_calls(client) - before) / n
        results = compare({"PING": client.ping, "rotate": rotate}, "PING", rounds=rounds, calls=calls)
    finally:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        store.close()
    md.append(table(results, "PING", "rotate on Redis vs one PING"))
    md.append(f"\nScript calls per rotation (INFO commandstats, upper bound on a shared server): {round_trips:.2f}\n")
    print(
        f"rotate {results['rotate'].median_us:.1f} µs vs PING {results['PING'].median_us:.1f} µs "
        f"(ratio {results['rotate'].ratio:.2f}); script calls per rotation: {round_trips:.2f}"
    )
    return {"cases": results, "script_calls_per_rotation": round_trips}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few rounds, few calls")
    args = parser.parse_args()
    rounds, calls = (3, 200) if args.quick else (15, 2000)
    md = ["# Tokens benchmark\n"]
    payload: dict[str, Any] = {"rounds": rounds, "calls_per_round": calls}
    payload["verify_access"] = bench_verify(rounds, calls, md)
    payload["rotate_redis"] = bench_rotate(rounds, max(100, calls // 4), md)
    path = save("tokens", payload, "\n".join(md))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
