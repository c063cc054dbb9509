"""atheris fuzz targets for the parsers; ``python -m tests.fuzz.run NAME -runs=N``."""
