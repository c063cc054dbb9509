"""Django-native passwords: a ``PASSWORD_HASHERS`` entry and an ``AUTH_PASSWORD_VALIDATORS`` entry.

:class:`GuardPasswordHasher` stores argon2id made by this library's :class:`~backend_guard.passwords.PasswordHasher`
(the ``settings.BACKEND_GUARD["passwords"]`` parameters, the versioned pepper of
``settings.BACKEND_GUARD_PASSWORD_PEPPERS``), as ``bg_argon2id$argon2id$v=19$m=...``. Django's own
``check_password`` flow does the rest: a hash of one of Django's hashers listed after it is verified by that
hasher and, on a correct password, replaced through the setter with ours; one of ours below the policy (weaker
parameters, an older pepper) is replaced too (``must_update`` is upgrade-only: a stronger hash is kept).

:class:`PasswordPolicyValidator` runs a :class:`~backend_guard.passwords.PasswordPolicy` in Django's
``validate_password``; its ``OPTIONS`` are the policy's keyword arguments.
"""

from __future__ import annotations

import copy
import math
import secrets
import threading
from collections.abc import Mapping
from typing import Any

from ..config import GuardSettings, PasswordSettings
from ..exceptions import ConfigurationError, InvalidHash
from ..passwords import Argon2Parameters, PasswordHasher, PasswordPolicy
from ..passwords._input import prepare
from ..passwords._schemes import ParsedArgon2, parse_hash

__all__ = [
    "ALGORITHM",
    "DJANGO_PASSWORD_COLUMN",
    "GuardPasswordHasher",
    "PasswordPolicyValidator",
    "configured_hasher",
    "encoded_length",
    "password_settings",
    "pepper_settings",
    "refuse_what_ours_refuses",
]

#: The algorithm name Django stores in front of our hashes (``identify_hasher`` reads it).
ALGORITHM = "bg_argon2id"
#: ``AbstractBaseUser.password`` is a ``CharField(max_length=128)``.
DJANGO_PASSWORD_COLUMN = 128
#: Django settings holding the peppers (``{"id": b"secret of >= 16 bytes"}``) and the id new hashes use.
PEPPERS_SETTING = "BACKEND_GUARD_PASSWORD_PEPPERS"
CURRENT_PEPPER_SETTING = "BACKEND_GUARD_PASSWORD_CURRENT_PEPPER"


def password_settings() -> PasswordSettings:
    """``settings.BACKEND_GUARD["passwords"]`` (validated with the rest of ``BACKEND_GUARD``).

    Example::

        password_settings().max_password_bytes   # 1024
    """
    from django.conf import settings

    return GuardSettings.coerce(getattr(settings, "BACKEND_GUARD", None), "settings.BACKEND_GUARD").passwords


def pepper_settings() -> tuple[dict[str, bytes] | None, str | None]:
    """``settings.BACKEND_GUARD_PASSWORD_PEPPERS`` (str values as UTF-8) and the current pepper's id.

    Example::

        peppers, current = pepper_settings()   # ({"2025": b"..."}, "2025")
    """
    from django.conf import settings

    peppers = getattr(settings, PEPPERS_SETTING, None)
    current = getattr(settings, CURRENT_PEPPER_SETTING, None)
    if peppers is None:
        return None, current
    if not isinstance(peppers, Mapping):
        raise ConfigurationError(f"settings.{PEPPERS_SETTING} must map pepper ids to secret keys.")
    return {k: v.encode("utf-8") if isinstance(v, str) else v for k, v in peppers.items()}, current


class _Built:
    """The hasher of the current settings: built on first use and again when the settings change."""

    lock = threading.Lock()
    built: tuple[object, PasswordHasher] | None = None


def _raw_settings() -> tuple[Any, Any, Any]:
    from django.conf import settings

    return (
        getattr(settings, "BACKEND_GUARD", None),
        getattr(settings, PEPPERS_SETTING, None),
        getattr(settings, CURRENT_PEPPER_SETTING, None),
    )


def configured_hasher() -> PasswordHasher:
    """The :class:`~backend_guard.passwords.PasswordHasher` of the Django settings (built once per settings).

    The settings are compared with a copy of those it was built from on each call (a few dict comparisons, not a
    validation of ``BACKEND_GUARD``), so ``override_settings`` or a settings change gets a new hasher.

    Example::

        configured_hasher().parameters   # Argon2Parameters(time_cost=2, memory_cost=19456, parallelism=1, ...)
    """
    raw = _raw_settings()
    built = _Built.built
    if built is not None and built[0] == raw:
        return built[1]
    with _Built.lock:
        built = _Built.built
        if built is not None and built[0] == raw:
            return built[1]
        hasher = password_settings().build()
        peppers, current = pepper_settings()
        if peppers is not None:
            hasher = PasswordHasher(
                hasher.parameters,
                peppers=peppers,
                current_pepper=current,
                normalize=hasher.normalize,
                max_password_bytes=hasher.max_password_bytes,
                accept_legacy=hasher.accept_legacy,
            )
        _Built.built = (copy.deepcopy(raw), hasher)
        return hasher


def _b64_length(size: int) -> int:
    return math.ceil(size * 4 / 3)


def encoded_length(parameters: Argon2Parameters, pepper_id: str | None) -> int:
    """How many characters :class:`GuardPasswordHasher` stores for these parameters (no hashing needed).

    Example::

        encoded_length(bg.passwords.OWASP_MIN, None)   # 108: within Django's 128-character column
    """
    p = parameters
    phc = f"argon2id$v=19$m={p.memory_cost},t={p.time_cost},p={p.parallelism}"
    keyid = len(f",keyid={pepper_id}") if pepper_id else 0
    return len(ALGORITHM) + 1 + len(phc) + keyid + 1 + _b64_length(p.salt_len) + 1 + _b64_length(p.hash_len)


def _new_hash(hasher: PasswordHasher, password: str | bytes) -> str:
    """A new hash of ``password``: one argon2 computation, as :meth:`GuardPasswordHasher.verify` costs one.

    Django runs ``make_password`` (our ``encode``) for an unknown username and for an account with an unusable
    password, where a known one gets ``check_password``: all must answer alike and cost alike, or a login tells
    which accounts exist. So an empty password, which ``PasswordHasher.hash`` refuses and no check ever matches,
    is stored as the hash of a random secret instead of raising (refused input, over the byte cap or with a NUL,
    raises InvalidPassword on every path).
    """
    return hasher.hash(password if password else secrets.token_urlsafe(16))


def _inner(encoded: str) -> str | None:
    """Our PHC string out of Django's ``bg_argon2id$...`` value; None when it is not one of ours."""
    algorithm, sep, rest = encoded.partition("$")
    return "$" + rest if sep and algorithm == ALGORITHM else None


def refuse_what_ours_refuses(password: str | bytes) -> None:
    """Raise :class:`~backend_guard.exceptions.InvalidPassword` for a password :class:`GuardPasswordHasher` refuses
    (over ``max_password_bytes``, a NUL), before any lookup or hash: what the legacy hashers and
    ``GuardModelBackend`` check first, so every account answers such a password alike.

    Example::

        refuse_what_ours_refuses("x" * 5000)   # InvalidPassword
    """
    hasher = configured_hasher()
    prepare(password, limit=hasher.max_password_bytes, normalize=hasher.normalize)


class GuardPasswordHasher:
    """Django ``PASSWORD_HASHERS`` entry: argon2id with backend_guard's parameters, pepper and rehash rules.

    Put it first; keep the hashers your users' hashes were made with after it (``backend_guard.django.Legacy*``,
    Django's own refusing first what this one refuses), so those verify and are replaced with ours at the next
    login. Django's ``salt`` is not used: argon2 draws its own 16 bytes.
    A password the hasher refuses (longer than ``max_password_bytes``, a NUL) raises
    :class:`~backend_guard.exceptions.InvalidPassword` from ``check_password`` as from ``make_password``, and
    both cost one argon2 computation whatever the password (the check is of its normalised form only, the form
    every hash of ours was made from), so a known account and an unknown one (``ModelBackend`` runs
    ``make_password``) answer alike, in the same time (an account with an unusable password, whose password Django
    hands no hasher, answers alike under ``GuardModelBackend``). An empty password is
    stored as a hash no password matches (``check_password("")`` is always False).
    It has every method Django calls on a hasher without subclassing Django's ``BasePasswordHasher``, so
    ``import backend_guard.django`` does not load ``django.contrib.auth`` (a third of a second).

    Example (settings.py)::

        PASSWORD_HASHERS = [
            "backend_guard.django.GuardPasswordHasher",
            "backend_guard.django.LegacyPBKDF2PasswordHasher",
            "backend_guard.django.LegacyArgon2PasswordHasher",
            "backend_guard.django.LegacyBCryptSHA256PasswordHasher",
        ]
    """

    algorithm = ALGORITHM
    library = None

    def __repr__(self) -> str:
        return f"GuardPasswordHasher({configured_hasher()!r})"

    def salt(self) -> str:
        """A salt for Django's ``make_password`` to hand back to :meth:`encode`, which does not use it."""
        return secrets.token_hex(11)

    def encode(self, password: str, salt: str) -> str:
        if password is None:
            raise TypeError("password must be provided.")
        if not salt or "$" in salt:
            raise ValueError("salt must be provided and cannot contain $.")
        encoded = ALGORITHM + "$" + _new_hash(configured_hasher(), password)[1:]
        if len(encoded) > DJANGO_PASSWORD_COLUMN:
            # Django would store a truncated, unusable hash (or the database refuse it): refuse it here instead.
            raise ConfigurationError(
                f"The hash is {len(encoded)} characters, over Django's {DJANGO_PASSWORD_COLUMN}: use a shorter "
                "pepper id or smaller salt_len/hash_len."
            )
        return encoded

    def verify(self, password: str, encoded: str) -> bool:
        inner = _inner(encoded)
        if inner is None:
            return False
        hasher = configured_hasher()
        # InvalidPassword (over max_password_bytes, a NUL) goes up, as from encode(): Django's ModelBackend
        # hashes the password of an unknown user with encode(), so a False here for a known one would tell
        # accounts apart. Through GuardMiddleware it is a 400 either way.
        secret = prepare(password, limit=hasher.max_password_bytes, normalize=hasher.normalize)
        try:
            # The normalised form only, so one argon2 check whatever the password, as encode() costs one hash:
            # PasswordHasher.verify would also try the form as typed when NFKC changes it (for hashes made
            # elsewhere, unnormalised), a second check an unknown account never pays. Ours are all normalised.
            return hasher.verify(inner, secret.normalized)
        except InvalidHash:  # garbage, a retired pepper: no match
            return False

    def must_update(self, encoded: str) -> bool:
        inner = _inner(encoded)
        try:
            return inner is not None and configured_hasher().needs_rehash(inner)
        except InvalidHash:
            return False

    def harden_runtime(self, password: str, encoded: str) -> None:
        """Nothing to add: a weaker argon2 hash of ours is rehashed at the next login, not padded with work."""

    def decode(self, encoded: str) -> dict[str, Any]:
        inner = _inner(encoded)
        parsed = parse_hash(inner) if inner is not None else None
        if not isinstance(parsed, ParsedArgon2) or inner is None:
            raise ValueError("Not a backend_guard argon2 hash.")
        salt, digest = inner.rsplit("$", 2)[1:]
        return {
            "algorithm": ALGORITHM,
            "variety": parsed.type,
            "version": parsed.version,
            "memory_cost": parsed.memory_cost,
            "time_cost": parsed.time_cost,
            "parallelism": parsed.parallelism,
            "pepper": parsed.pepper_id,
            "salt": salt,
            "hash": digest,
        }

    def safe_summary(self, encoded: str) -> dict[str, Any]:
        from django.contrib.auth.hashers import mask_hash

        decoded = self.decode(encoded)
        return {
            "algorithm": decoded["algorithm"],
            "variety": decoded["variety"],
            "version": decoded["version"],
            "memory cost": decoded["memory_cost"],
            "time cost": decoded["time_cost"],
            "parallelism": decoded["parallelism"],
            "pepper": decoded["pepper"] or "",
            "salt": mask_hash(decoded["salt"]),
            "hash": mask_hash(decoded["hash"]),
        }


def _user_context(user: Any) -> dict[str, object]:
    """What the password must not contain, from a Django user: username, e-mail, first and last name."""
    if user is None:
        return {}
    context: dict[str, object] = {}
    get_username = getattr(user, "get_username", None)
    context["username"] = get_username() if callable(get_username) else getattr(user, "username", None)
    email_field = getattr(user, "get_email_field_name", None)
    context["email"] = getattr(user, email_field() if callable(email_field) else "email", None)
    for name in ("first_name", "last_name"):
        context[name] = getattr(user, name, None)
    return context


class PasswordPolicyValidator:
    """Django ``AUTH_PASSWORD_VALIDATORS`` entry running a :class:`~backend_guard.passwords.PasswordPolicy`.

    ``OPTIONS`` are the policy's keyword arguments (``min_length``, ``mfa``, ``site_name``, ``blocklist``,
    ``blocklist_files``, ``pwned``: a file path, ``min_score``...); the normalisation and byte cap default to
    ``settings.BACKEND_GUARD["passwords"]``'s, the hasher's. The user's username, e-mail and names are the
    context. Each refusal is a ``ValidationError`` whose ``code`` is the policy's code.

    Example (settings.py)::

        AUTH_PASSWORD_VALIDATORS = [
            {"NAME": "backend_guard.django.PasswordPolicyValidator", "OPTIONS": {"site_name": "Acme"}},
        ]
    """

    def __init__(self, **options: Any) -> None:
        section = password_settings()
        options.setdefault("normalize", section.normalize)
        options.setdefault("max_bytes", section.max_password_bytes)
        try:
            self.policy = PasswordPolicy(**options)
        except TypeError:
            raise ConfigurationError(
                "AUTH_PASSWORD_VALIDATORS: an OPTIONS key of PasswordPolicyValidator is not a PasswordPolicy argument."
            ) from None

    def validate(self, password: str, user: Any = None) -> None:
        from django.core.exceptions import ValidationError

        reasons = self.policy.reasons(password, _user_context(user))
        if reasons:
            raise ValidationError([ValidationError(issue.message, code=issue.code) for issue in reasons])

    def get_help_text(self) -> str:
        return self.policy.help_text()
