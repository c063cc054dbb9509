"""Benchmark PasswordPolicy: the blocklist check per password (target <= 20 µs), the whole policy, Pwned lookups.

Cases, in interleaved shuffled rounds with medians (see _harness.py), each call on the next password of a fixed
mix (listed passwords, listed words in an affix, passphrases, long and non-ASCII ones), already NFKC-folded for
the blocklist cases as the policy hands them over:

- ``frozenset lookup`` (the baseline): one membership test in a frozenset of the shipped list, the floor;
- ``Blocklist.matches``: the blocklist check of the policy (the exact test, then the affix rules);
- ``PasswordPolicy.reasons``: every rule of a default policy, from the raw password (normalisation included);
- ``PwnedPasswordsFile.count``: SHA-1 and a binary search in a generated sorted hash file (a stand-in for the
  real download, with as many lines as ``--pwned-lines``).

The shipped list is loaded before timing (its one-off load, about 10 ms, is reported apart).

Usage::

    python benchmarks/bench_password_policy.py            # full run
    python benchmarks/bench_password_policy.py --quick    # smoke run, a few seconds

Writes benchmarks/results/password_policy.json (and .md); ``--quick`` writes password_policy-quick.*.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import compare, save, table

from backend_guard.passwords import PasswordPolicy, PwnedPasswordsFile
from backend_guard.passwords._blocklist import SHIPPED_LIST, Blocklist, read_list
from backend_guard.passwords._rules import fold

BUDGET_US = 20.0
MIX = [
    "password",
    "123456789",
    "Password2024!",
    "qwerty123456789",
    "correct horse battery staple",
    "Tr0ub4dor&3 is my horse",
    "dragon 8472 9913 55 ok",
    "ĉiuĵaŭde ŝi manĝas ĝustan pomon",
    "the quick brown fox jumps over the lazy dog " * 3,
    "zq8!Lm2@xV9#pR4$",
]


def _cycle(items: list[str], call: Callable[[str], object]) -> Callable[[], object]:
    source = itertools.cycle(items)
    return lambda: call(next(source))


def _pwned_file(folder: Path, lines: int) -> Path:
    """A sorted ``HASH:COUNT`` file of ``lines`` hashes, holding the mix's first four passwords."""
    hashes = {hashlib.sha1(p.encode()).hexdigest().upper() for p in MIX[:4]}
    hashes |= {hashlib.sha1(b"filler %d" % i).hexdigest().upper() for i in range(lines - len(hashes))}
    path = folder / "pwned.txt"
    with open(path, "w", encoding="ascii") as handle:
        handle.writelines(f"{h}:{i % 97 + 1}\n" for i, h in enumerate(sorted(hashes)))
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--pwned-lines", type=int, default=None, help="lines of the generated Pwned file")
    args = parser.parse_args()
    rounds, calls = (5, 2000) if args.quick else (21, 20000)
    lines = args.pwned_lines or (10_000 if args.quick else 1_000_000)

    start = time.perf_counter()
    blocklist = Blocklist()
    assert blocklist.matches("password")  # loads the shipped list
    load_ms = (time.perf_counter() - start) * 1000
    words = read_list(SHIPPED_LIST)
    folded = [fold(p) for p in MIX]
    policy = PasswordPolicy()
    with tempfile.TemporaryDirectory() as tmp:
        pwned = PwnedPasswordsFile(_pwned_file(Path(tmp), lines))
        assert pwned.count(MIX[0]) > 0
        assert pwned.count(MIX[4]) == 0
        cases = {
            "frozenset lookup": _cycle(folded, words.__contains__),
            "Blocklist.matches": _cycle(folded, blocklist.matches),
            "PasswordPolicy.reasons": _cycle(MIX, policy.reasons),
            "PwnedPasswordsFile.count": _cycle(MIX, pwned.count),
        }
        assert [blocklist.matches(p) for p in folded][:4] == [True] * 4
        results = compare(cases, "frozenset lookup", rounds=rounds, calls=calls)
        pwned.close()
    per_check = results["Blocklist.matches"].median_us
    met = per_check <= BUDGET_US
    md = table(results, "frozenset lookup", "Password policy: per password (a mix of 10)")
    md += (
        f"\nBlocklist check: {per_check:.2f} µs per password ({'within' if met else 'OVER'} the {BUDGET_US} µs "
        f"budget). Shipped list ({len(words)} entries) loaded once in {load_ms:.1f} ms. Pwned file: {lines} lines.\n"
    )
    path = save(
        "password_policy" if not args.quick else "password_policy-quick",
        {
            "quick": args.quick,
            "baseline": "frozenset lookup",
            "results": results,
            "blocklist": {"entries": len(words), "load_ms": load_ms},
            "pwned_lines": lines,
            "targets": {"blocklist_us": per_check, "budget_us": BUDGET_US, "met": met},
        },
        md,
    )
    print(md)
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
