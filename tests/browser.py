"""Headless Chromium (Debian's ``chromium``) for tests: load a loopback page, let its scripts run, read the DOM.

``--dump-dom`` prints the DOM after the page settles; ``--virtual-time-budget`` lets pending fetches and
timers finish first. A fresh profile directory per run; background networking off (the machine has no
network beyond loopback).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

REQUIRE_BROWSER = os.environ.get("BACKEND_GUARD_REQUIRE_BROWSER") == "1"


def chromium_path() -> str:
    """The Chromium binary, or skip (fail when BACKEND_GUARD_REQUIRE_BROWSER=1)."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    if REQUIRE_BROWSER:
        pytest.fail("BACKEND_GUARD_REQUIRE_BROWSER=1 but no chromium is installed")
    pytest.skip("chromium is not installed (Debian package 'chromium')")


def dump_dom(url: str, *, budget_ms: int = 3000, timeout: float = 60.0) -> str:
    """Load ``url`` in headless Chromium and return the serialised DOM once scripts and fetches settle."""
    assert url.startswith(("http://127.0.0.1:", "http://localhost:")), "browser tests only visit loopback"
    exe = chromium_path()
    with tempfile.TemporaryDirectory(prefix="bg-chromium-") as profile:
        proc = subprocess.run(  # noqa: S603 - fixed local binary, loopback URL
            [
                exe,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                f"--user-data-dir={profile}",
                f"--virtual-time-budget={budget_ms}",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    return proc.stdout.decode("utf-8", "replace")
