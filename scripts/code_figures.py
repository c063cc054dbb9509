"""The code figures issue #23 set for ``src/`` (radon), checked in CI next to ruff and mypy.

    python scripts/code_figures.py            # prints the figures, exits 1 when a target is missed
    python scripts/code_figures.py PATH...    # the same figures for some modules or folders only

Targets: average cyclomatic complexity of all blocks <= 2.8, no block above 15 (ruff's C901 says the same),
every module's maintainability index >= 20, no module above 600 lines. A figure that slips names the modules
or blocks that made it slip, so the fix starts where the change was made.
"""

from __future__ import annotations

import sys
from pathlib import Path

from radon.complexity import cc_visit
from radon.metrics import mi_visit

SRC = Path(__file__).resolve().parent.parent / "src" / "backend_guard"
MAX_AVERAGE_CC = 2.8
MAX_BLOCK_CC = 15
MIN_MI = 20.0
MAX_LINES = 600


def blocks(code: str) -> list[tuple[str, int]]:
    """Every function, method and class of a module with its complexity, as ``radon cc -a`` counts them."""
    return [(block.fullname, block.complexity) for block in cc_visit(code)]  # methods are listed on their own


def main(args: list[str]) -> int:
    roots = [Path(a).resolve() for a in args] or [SRC]
    paths = sorted({p for r in roots for p in ([r] if r.is_file() else r.rglob("*.py"))})
    total = count = 0
    problems: list[str] = []
    for path in paths:
        name = str(path.relative_to(SRC.parent)) if path.is_relative_to(SRC.parent) else str(path)
        code = path.read_text(encoding="utf-8")
        lines = code.count("\n") + 1
        if lines > MAX_LINES:
            problems.append(f"{name}: {lines} lines (> {MAX_LINES})")
        mi = mi_visit(code, multi=True)
        if mi < MIN_MI:
            problems.append(f"{name}: maintainability index {mi:.1f} (< {MIN_MI})")
        for block, cc in blocks(code):
            total += cc
            count += 1
            if cc > MAX_BLOCK_CC:
                problems.append(f"{name}: {block} has complexity {cc} (> {MAX_BLOCK_CC})")
    average = total / count if count else 0.0
    print(f"{count} blocks, average cyclomatic complexity {average:.2f} (target <= {MAX_AVERAGE_CC})")
    if average > MAX_AVERAGE_CC:
        problems.append(f"average cyclomatic complexity {average:.2f} (> {MAX_AVERAGE_CC})")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
