"""The stacks under ``python -bb``, where comparing bytes with str is an error: ASGI headers are bytes, WSGI's str,
and a lookup table or a test holding both kinds made every CORS request with an Origin, every Sec-Fetch-Site check
and every response's Content-Type test raise there (redis-py itself does not import under ``-bb``: the check
runs on the memory store)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHECK = Path(__file__).with_name("bytes_warnings_check.py")


def test_the_asgi_and_wsgi_stacks_compare_no_bytes_with_str() -> None:
    done = subprocess.run(  # noqa: S603 - this interpreter, a file of the tests
        [sys.executable, "-bb", str(CHECK)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "ok"
