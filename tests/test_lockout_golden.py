"""The generated lockout reserve script, pinned: a change to the Lua generator shows up as a reviewable diff.

``reserve_lua`` writes one straight-line script per policy. This test renders it for one fixed policy (every
scope on, so every scope's code appears) and compares it with ``tests/golden/lockout_reserve.lua``. When a
change to the generator is intended, regenerate the file and review its diff with the change::

    BACKEND_GUARD_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/test_lockout_golden.py
"""

from __future__ import annotations

import os
from pathlib import Path

from backend_guard.lockout._scripts import LockoutPolicy, ScopeRule, reserve_lua

GOLDEN = Path(__file__).parent / "golden" / "lockout_reserve.lua"
REGENERATE = "BACKEND_GUARD_REGENERATE_GOLDEN"

# A fixed policy with every scope on (5 failures per pair in 15 min, 20 per account, a ceiling of 100 a day, 10
# per address; a 5 min first lock doubling up to 1 h), written out here rather than taken from Lockout's
# defaults, so that only a change to the generator moves the golden file.
_MIN = 60_000


def _rule(threshold: int, window: int) -> ScopeRule:
    return ScopeRule(True, threshold, window, 5 * _MIN, 2000, 60 * _MIN, 24 * 60 * _MIN)


POLICY = LockoutPolicy(
    (_rule(5, 15 * _MIN), _rule(20, 15 * _MIN), _rule(100, 24 * 60 * _MIN), _rule(10, 15 * _MIN)),
    remember_ms=30 * 24 * 60 * _MIN,
    extend=False,
    keep=10,
)


def test_the_generated_reserve_script_for_a_fixed_policy_is_the_committed_golden_file() -> None:
    rendered = reserve_lua(POLICY)
    if os.environ.get(REGENERATE) == "1":
        GOLDEN.write_text(rendered, encoding="utf-8")
    expected = GOLDEN.read_text(encoding="utf-8") if GOLDEN.exists() else ""
    assert rendered == expected, (
        f"The generated lockout reserve script differs from tests/golden/{GOLDEN.name}. If the generator "
        f"change is intended, run `{REGENERATE}=1 .venv/bin/python -m pytest tests/{Path(__file__).name}` and commit "
        "the new file with a review of its diff."
    )
