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


class Page:
    """Headless Chromium driven over the DevTools protocol (``--remote-debugging-pipe``: no extra package).

    ``goto`` loads a loopback URL and waits for its load event; ``evaluate`` runs an expression in the page
    (DevTools evaluation is exempt from the page's CSP); ``violations`` lists every CSP violation the browser
    reported (``securitypolicyviolation`` events and console messages), across navigations. Use as a context
    manager: the browser and its profile are removed on exit.
    """

    def __init__(self, *, timeout: float = 30.0) -> None:
        import json
        import threading

        self._json = json
        self.timeout = timeout
        # Chromium's helper processes may still be writing the profile when the browser has exited.
        self._profile = tempfile.TemporaryDirectory(prefix="bg-chromium-", ignore_cleanup_errors=True)
        exe = chromium_path()
        # Chromium reads commands on fd 3 and writes answers on fd 4: the shell maps our pipes there.
        self._proc = subprocess.Popen(  # noqa: S603 - fixed local binary
            [
                "/bin/sh",
                "-c",
                'exec "$0" "$@" 3<&0 4>&1 </dev/null >/dev/null',
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
                "--password-store=basic",
                f"--user-data-dir={self._profile.name}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self._next = 0
        self._answers: dict[int, dict[str, object]] = {}
        self.events: list[dict[str, object]] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        target = self._call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self._call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self._call(f"{domain}.enable", session=True)
        # Kept on window.opener-free storage that survives in the page only: read before navigating away.
        self._call(
            "Page.addScriptToEvaluateOnNewDocument",
            session=True,
            source="window.__violations = []; document.addEventListener('securitypolicyviolation', e => "
            "window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));",
        )

    def _read(self) -> None:
        assert self._proc.stdout is not None
        buffer = b""
        while True:
            chunk = self._proc.stdout.read1(65536)
            if not chunk:
                with self._cond:
                    self._cond.notify_all()
                return
            buffer += chunk
            *messages, buffer = buffer.split(b"\0")
            with self._cond:
                for raw in messages:
                    message = self._json.loads(raw)
                    if "id" in message:
                        self._answers[message["id"]] = message
                    else:
                        self.events.append(message)
                self._cond.notify_all()

    def _call(self, method: str, *, session: bool = False, **params: object) -> dict[str, object]:
        assert self._proc.stdin is not None
        with self._cond:
            self._next += 1
            ident = self._next
        message: dict[str, object] = {"id": ident, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        self._proc.stdin.write(self._json.dumps(message).encode() + b"\0")
        self._proc.stdin.flush()
        with self._cond:
            if not self._cond.wait_for(lambda: ident in self._answers or self._proc.poll() is not None, self.timeout):
                raise TimeoutError(f"chromium did not answer {method}")
            answer = self._answers.pop(ident, None)
        if answer is None:
            raise RuntimeError("chromium exited")
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        result = answer.get("result", {})
        assert isinstance(result, dict)
        return result

    def _wait_event(self, method: str, start: int) -> bool:
        with self._cond:
            return self._cond.wait_for(
                lambda: any(e.get("method") == method for e in self.events[start:]), self.timeout
            )

    def goto(self, url: str) -> None:
        """Load ``url`` (loopback only) and wait for its load event."""
        assert url.startswith(("http://127.0.0.1:", "http://localhost:")), "browser tests only visit loopback"
        start = len(self.events)
        self._call("Page.navigate", session=True, url=url)
        if not self._wait_event("Page.loadEventFired", start):
            raise TimeoutError(f"{url} did not load within {self.timeout} s")

    def evaluate(self, expression: str) -> object:
        """The value of a JavaScript expression in the page (a Promise is awaited)."""
        result = self._call(
            "Runtime.evaluate", session=True, expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} threw: {result['exceptionDetails']}")
        inner = result["result"]
        assert isinstance(inner, dict)
        return inner.get("value")

    def click_and_wait(self, selector: str) -> None:
        """Click the element ``selector`` (a real click, as a user would) and wait for the next page load."""
        start = len(self.events)
        self.evaluate(f"document.querySelector({self._json.dumps(selector)}).click()")
        assert self._wait_event("Page.loadEventFired", start), (
            f"clicking {selector} loaded no page within {self.timeout} s; CSP: {self.console_violations()}"
        )

    def page_violations(self) -> list[str]:
        """The CSP violations the current page saw (``securitypolicyviolation`` events)."""
        found = self.evaluate("window.__violations || []")
        assert isinstance(found, list)
        return [str(v) for v in found]

    def console_violations(self) -> list[str]:
        """Every console message, over every page loaded so far, that reports a Content Security Policy refusal."""
        out = []
        for event in self.events:
            params = event.get("params")
            if not isinstance(params, dict):
                continue
            if event.get("method") == "Log.entryAdded":
                text = str(params.get("entry", {}).get("text", ""))
            elif event.get("method") == "Runtime.consoleAPICalled":
                text = " ".join(str(a.get("value", "")) for a in params.get("args", []))
            else:
                continue
            if "Content Security Policy" in text or "Content-Security-Policy" in text:
                out.append(text)
        return out

    def close(self) -> None:
        """Stop the browser (bounded) and remove its profile."""
        try:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait(5)
        finally:
            for stream in (self._proc.stdin, self._proc.stdout):
                if stream is not None:
                    stream.close()
            self._reader.join(5)
            self._profile.cleanup()

    def __enter__(self) -> Page:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
