"""Run one fuzz target under atheris: ``python -m tests.fuzz.run NAME [libFuzzer flags]``."""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["backend_guard"]):
    from tests.fuzz.targets import TARGETS


def main() -> None:
    name = sys.argv[1]
    target = TARGETS[name]

    def one(data: bytes) -> None:
        target(data)

    atheris.Setup([sys.argv[0], *sys.argv[2:]], one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
