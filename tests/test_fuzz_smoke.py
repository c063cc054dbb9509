"""A short, bounded atheris run of every fuzz target (the long runs are done by hand: see docs/security.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from .fuzz.targets import TARGETS

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz_target_smoke(name: str) -> None:
    pytest.importorskip("atheris")
    proc = subprocess.run(  # noqa: S603 - our own module, bounded run
        [sys.executable, "-m", "tests.fuzz.run", name, "-runs=3000", "-max_total_time=20", "-rss_limit_mb=2048"],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    tail = proc.stderr.decode(errors="replace")[-3000:]
    assert proc.returncode == 0, tail
    assert "Done" in tail or "DONE" in tail or "runs in" in tail, tail


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzz_target_runs_on_seed_inputs(name: str) -> None:
    for seed in (b"", b"\x00", b"https://example.com", b"for=1.2.3.4;proto=https", b"$argon2id$v=19$m=1,t=1,p=1$"):
        TARGETS[name](seed)
