"""User code adding our middlewares the Starlette ways type-checks under ``mypy --strict``.

``tests/typing_usage.py`` holds the calls (``app.add_middleware(...)`` and ``Middleware(...)`` for all five
ASGI middlewares and ``Guard``); this test runs mypy on it in a subprocess and asserts a clean result.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
USAGE = Path(__file__).resolve().parent / "typing_usage.py"


@pytest.mark.slow
def test_starlette_middleware_usage_passes_mypy_strict(tmp_path: Path) -> None:
    if shutil.which("mypy") is None and not (Path(sys.executable).parent / "mypy").exists():
        pytest.skip("mypy is not installed")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / "mypy-cache"),
            "--config-file",
            str(ROOT / "pyproject.toml"),
            str(USAGE),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success: no issues found" in proc.stdout


def test_usage_file_runs() -> None:
    # the typed calls are real calls: building the apps must work at runtime too
    import importlib

    module = importlib.import_module("tests.typing_usage")
    assert len(module.middleware) == 6
    assert module.app.user_middleware  # every add_middleware call was recorded
