"""Argon2id cost parameters: the policy type, OWASP's floor and the named profiles.

What lives here: :class:`Argon2Parameters` (validated when built), the OWASP Password Storage Cheat Sheet's
table of equivalent argon2id configurations, and the profiles :data:`OWASP_MIN` (the default),
:data:`RFC_9106_LOW_MEMORY` and :data:`TEST`. Nothing here hashes a password.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..exceptions import ConfigurationError, InvalidHash
from ._schemes import ParsedArgon2, parse_hash

__all__ = [
    "DEFAULT_PARAMETERS",
    "OWASP_MIN",
    "OWASP_TABLE",
    "RECOMMENDED",
    "RFC_9106_LOW_MEMORY",
    "TEST",
    "Argon2Parameters",
    "owasp_min_time_cost",
]

# OWASP Password Storage Cheat Sheet, argon2id: equivalent (memory KiB, iterations) pairs, parallelism 1.
OWASP_TABLE = ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))
_FIELDS = ("time_cost", "memory_cost", "parallelism", "hash_len", "salt_len")


def owasp_min_time_cost(memory_cost: int) -> int | None:
    """The fewest iterations OWASP accepts at ``memory_cost`` KiB; ``None`` below its smallest memory.

    Example::

        owasp_min_time_cost(19456)   # 2
    """
    for memory, iterations in OWASP_TABLE:
        if memory_cost >= memory:
            return iterations
    return None


@dataclass(frozen=True)
class Argon2Parameters:
    """Argon2id cost parameters of a hashing policy (memory in KiB); validated when built.

    Example::

        params = bg.Argon2Parameters(time_cost=3, memory_cost=65536, parallelism=1)
        hasher = bg.PasswordHasher(params)
    """

    time_cost: int
    memory_cost: int
    parallelism: int = 1
    hash_len: int = 32
    salt_len: int = 16

    def __post_init__(self) -> None:
        for name in _FIELDS:
            if type(getattr(self, name)) is not int:
                raise ConfigurationError(f"Argon2Parameters.{name} must be an int.")
        problem = self._range_problem()
        if problem is not None:
            raise ConfigurationError(problem)

    def _range_problem(self) -> str | None:
        """The first parameter out of libargon2's (and this library's) range, as a message; None if all fit."""
        ranges = (
            (1 <= self.parallelism <= 255, "parallelism must be between 1 and 255."),
            (1 <= self.time_cost <= 1000, "time_cost must be between 1 and 1000."),
            (
                8 * self.parallelism <= self.memory_cost <= 4 * 1024 * 1024,
                "memory_cost must be between 8 * parallelism KiB and 4 GiB.",
            ),
            (
                16 <= self.hash_len <= 64 and 16 <= self.salt_len <= 64,
                "hash_len and salt_len must be between 16 and 64 bytes.",
            ),
        )
        return next((message for fits, message in ranges if not fits), None)

    def meets_owasp(self) -> bool:
        """Whether these parameters are at or above one of OWASP's argon2id configurations.

        Example::

            assert bg.passwords.OWASP_MIN.meets_owasp() and not bg.passwords.TEST.meets_owasp()
        """
        floor = owasp_min_time_cost(self.memory_cost)
        return floor is not None and self.time_cost >= floor

    @classmethod
    def from_hash(cls, stored_hash: str) -> Argon2Parameters:
        """The parameters a stored argon2 hash was made with; raises InvalidHash for anything else.

        Example::

            bg.Argon2Parameters.from_hash(hasher.hash("s3cret")) == hasher.parameters
        """
        parsed = parse_hash(stored_hash)
        if not isinstance(parsed, ParsedArgon2):
            raise InvalidHash("The stored hash is not an argon2 hash.")
        try:
            return cls(parsed.time_cost, parsed.memory_cost, parsed.parallelism, parsed.hash_len, parsed.salt_len)
        except ConfigurationError:
            raise InvalidHash("The stored hash has out-of-range parameters.") from None


#: OWASP's minimum for argon2id (19 MiB, 2 iterations, 1 lane); the default policy.
OWASP_MIN = Argon2Parameters(time_cost=2, memory_cost=19456, parallelism=1)
#: The default policy of :class:`PasswordHasher` (see docs/passwords.md for why).
DEFAULT_PARAMETERS = OWASP_MIN
#: Alias of :data:`DEFAULT_PARAMETERS`.
RECOMMENDED = DEFAULT_PARAMETERS
#: RFC 9106's second recommendation (argon2-cffi's default): 64 MiB, 3 iterations, 4 lanes.
RFC_9106_LOW_MEMORY = Argon2Parameters(time_cost=3, memory_cost=65536, parallelism=4)
#: Cheapest parameters, for test suites only (needs ``allow_weak=True``).
TEST = Argon2Parameters(time_cost=1, memory_cost=8, parallelism=1)
