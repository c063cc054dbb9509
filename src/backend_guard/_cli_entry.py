"""The ``backend-guard`` console script: :func:`backend_guard.cli.main`, with a configuration error met while the
command line loads said in one line (status 2), not a traceback.

The command line imports :mod:`backend_guard.events`, which reads ``BACKEND_GUARD_DIGEST_KEY`` when it is imported
and refuses one shorter than 16 bytes (an app refuses to start the same way): here that refusal, for every command
(``--help`` too), is one line on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .exceptions import ConfigurationError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``backend-guard`` command (:func:`backend_guard.cli.main`); 2 when it cannot load.

    Example::

        raise SystemExit(main(["keys"]))
    """
    try:
        from .cli import main as run  # here, so a refusal while it loads is caught: see the module's documentation
    except ConfigurationError as exc:
        print(f"backend-guard: {exc.detail}", file=sys.stderr)
        return 2
    return run(argv)
