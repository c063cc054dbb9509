"""Choosing passwords: :class:`PasswordPolicy`, the NIST SP 800-63B rev. 4 rules for a new password.

Sans-IO: a policy is a plain object that answers "which rules does this password break?" with stable codes and
messages a user can act on; the shells (a pydantic type, a Django validator, your own form code) only translate
the answer. No message, repr or log line ever holds the password: every message is fixed text per code (and the
policy's own settings), so it cannot.

Cost is bounded by the byte cap before any work (the same cap :class:`~backend_guard.passwords.PasswordHasher`
applies): a 1 MB password is refused on its length alone, and every rule below is linear in at most that many
bytes.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from backend_guard._check import check_bool, check_str, check_strs, optional
from backend_guard.exceptions import ConfigurationError, InvalidPassword
from backend_guard.passwords._blocklist import Blocklist
from backend_guard.passwords._pwned import PwnedPasswordsFile
from backend_guard.passwords._rules import (
    context_tokens,
    fold,
    fold_context,
    is_periodic,
    matching_context,
    trivial_cover,
)

if TYPE_CHECKING:
    from backend_guard.passwords import PasswordHasher

__all__ = ["CONTEXT_NAMES", "MESSAGES", "PasswordIssue", "PasswordPolicy", "WeakPassword"]

NormalForm = Literal["NFC", "NFD", "NFKC", "NFKD"]
#: zxcvbn's estimator: ``f(password, user_inputs) -> {"score": 0..4, ...}``.
_Estimator = Callable[[str, list[str]], object]

#: NIST SP 800-63B rev. 4, 3.1.1.2: minimum length when the password is the only factor, and with a second one.
NIST_MIN_SINGLE_FACTOR = 15
NIST_MIN_WITH_MFA = 8
#: Verifiers SHOULD permit at least this many characters (same section).
NIST_MAX_AT_LEAST = 64
#: zxcvbn's cost grows faster than linearly with the length: it sees this many characters at most.
_ESTIMATE_CHARS = 72

#: The fixed message of each refusal code ({placeholders} are filled from the policy's settings only).
MESSAGES: dict[str, str] = {
    "not-text": "The password must be text.",
    "invalid-character": "The password holds a character that cannot be used (NUL, or an unpaired surrogate).",
    "too-short": "Use at least {min_length} characters; a few unrelated words make a long password easy to remember.",
    "too-long": "Use at most {max_length} characters.",
    "common-password": "This password is on a list of commonly used passwords; choose one that is not.",
    "context-word": "The password contains your {context}; choose one that does not.",
    "repeated-characters": "The password is mostly repeated characters or a repeated pattern; choose another.",
    "sequential-characters": "The password is mostly a sequence such as 'abcd', '4321' or 'qwerty'; choose another.",
    "breached-password": "This password has appeared in a data breach (Pwned Passwords); choose another one.",
    "too-guessable": "This password is easy to guess for password-cracking tools; add more unrelated words.",
}
# What each context kind is called in a message; any other key of the context is "personal details".
_CONTEXT_NAMES = {"username": "username", "email": "e-mail address", "site": "site's name", "words": "details"}
#: Every value a message's ``{context}`` can take (what a 422 may state: nothing else).
CONTEXT_NAMES = frozenset({*_CONTEXT_NAMES.values(), "personal details"})


@dataclass(frozen=True)
class PasswordIssue:
    """One rule a password breaks: a stable ``code`` (``"too-short"``...) and a ``message`` to show the user.

    Example::

        [issue.code for issue in policy.reasons("password")]   # ["too-short", "common-password"]
    """

    code: str
    message: str
    #: For ``context-word``: what the password contains (``"username"``, ``"e-mail address"``...), else None.
    context: str | None = None


class WeakPassword(InvalidPassword):
    """422: a new password breaks the password policy; ``reasons`` lists every rule it breaks.

    The detail joins the reasons' messages; the problem document carries them as ``reasons`` (code and
    message each). Never the password itself. A ValueError too, like every input error of the library.

    Example::

        try:
            policy.check(form.password, context={"username": form.username})
        except bg.WeakPassword as exc:
            errors = [issue.message for issue in exc.reasons]
    """

    status = 422
    code = "weak-password"
    title = "Weak Password"

    def __init__(self, reasons: Iterable[PasswordIssue]) -> None:
        self.reasons: tuple[PasswordIssue, ...] = tuple(reasons)
        super().__init__(" ".join(issue.message for issue in self.reasons) or self.title)

    def extensions(self) -> dict[str, object]:
        return {"reasons": [{"code": issue.code, "message": issue.message} for issue in self.reasons]}


@dataclass(frozen=True, repr=False)
class _Prepared:
    """A password after the input policy: normalised text, its case-folded form, and the UTF-8 as typed.

    No generated repr (``object``'s instead), so a stray log line or assertion message cannot print the password.
    """

    text: str
    folded: str
    raw: bytes


class PasswordPolicy:
    """The rules for choosing a password, after NIST SP 800-63B rev. 4 (3.1.1.2); sans-IO.

    - ``min_length``: 15 code points by default, 8 with ``mfa=True`` (the password is not the only factor);
      never below 8. ``max_length`` (at least 64) and ``max_bytes`` (the UTF-8 cap, checked first) bound
      what is accepted. Length is counted in code points after ``normalize`` (NFKC), the hasher's form; pass
      ``hasher=`` to take its normalisation and byte cap. Every Unicode character is accepted but NUL.
    - a blocklist: the shipped common passwords (``common_passwords=True``), plus ``blocklist`` (words) and
      ``blocklist_files`` (one per line, ``.gz`` too); a listed word in a short or trivial affix counts.
    - context words: ``site_name``, ``context_words`` and the ``context`` of each call (``username``,
      ``email``: its local part and domain, any other key) are refused when the password is or contains them.
    - ``check_patterns``: passwords that are mostly repeated or sequential characters (``aaaaaaaa``,
      ``12345678``, ``qwertyuiop``) or one unit repeated (``abcabcabc``).
    - ``pwned``: a :class:`PwnedPasswordsFile` (or its path), refused when the password is in it.
    - ``min_score``: a zxcvbn score (0-4) to reach; needs the ``zxcvbn`` package.

    No composition rules and no expiry: NIST forbids both.

    Example::

        policy = bg.PasswordPolicy(site_name="Acme")
        policy.check("correct horse battery staple", context={"username": "alice"})   # passes
        [issue.code for issue in policy.reasons("acme-password")]   # ["too-short", "context-word"]
    """

    #: The message of each code; a subclass may replace them (a translation), keeping the placeholders.
    messages: ClassVar[Mapping[str, str]] = MESSAGES

    def __init__(
        self,
        *,
        min_length: int | None = None,
        mfa: bool = False,
        max_length: int = 1024,
        max_bytes: int = 1024,
        normalize: NormalForm | None = "NFKC",
        hasher: PasswordHasher | None = None,
        common_passwords: bool = True,
        blocklist: Iterable[str] = (),
        blocklist_files: Iterable[str | Path] = (),
        site_name: str | None = None,
        context_words: Iterable[str] = (),
        check_patterns: bool = True,
        pwned: PwnedPasswordsFile | str | Path | None = None,
        min_score: int | None = None,
    ) -> None:
        _check_types(mfa=mfa, common_passwords=common_passwords, check_patterns=check_patterns, site_name=site_name)
        blocklist, context_words = check_strs("blocklist", blocklist), check_strs("context_words", context_words)
        if hasher is not None:
            normalize, max_bytes = hasher.normalize, hasher.max_password_bytes
        min_length = _min_length(min_length, mfa=mfa)
        _check_lengths(min_length, max_length, max_bytes)
        _check_normalize(normalize)
        self.min_length, self.max_length, self.max_bytes = min_length, max_length, max_bytes
        self.normalize: NormalForm | None = normalize
        self.blocklist = Blocklist(shipped=common_passwords, words=blocklist, files=blocklist_files)
        self._context_defaults = (*_site_context(site_name), *_word_context(context_words))
        self.check_patterns = check_patterns
        self.pwned = _pwned_file(pwned)
        _check_score(min_score)
        self.min_score = min_score
        self._estimate = _zxcvbn() if min_score is not None else None

    def __repr__(self) -> str:
        return (
            f"PasswordPolicy(min_length={self.min_length}, max_length={self.max_length}, "
            f"max_bytes={self.max_bytes}, blocklist={self.blocklist!r}, pwned={self.pwned!r}, "
            f"min_score={self.min_score!r})"
        )

    # ---- the answer ----------------------------------------------------------------------------------

    def issue(self, code: str, **fill: str) -> PasswordIssue:
        """The :class:`PasswordIssue` of ``code``, its message filled from this policy's settings.

        Example::

            policy.issue("too-short").message   # "Use at least 15 characters; ..."
        """
        values = {"min_length": str(self.min_length), "max_length": str(self.max_length), "context": "details"}
        return PasswordIssue(code, self.messages[code].format_map({**values, **fill}), fill.get("context"))

    def reasons(self, password: object, context: Mapping[str, object] | None = None) -> tuple[PasswordIssue, ...]:
        """Every rule ``password`` breaks, in a stable order; empty when it is acceptable. Never raises for input.

        ``context`` holds what the password must not contain: ``username``, ``email`` and any other string
        (a name, the date of birth as typed); values that are not strings are ignored.

        Example::

            reasons = policy.reasons(form.password, context={"username": form.username, "email": form.email})
            if reasons:
                return render(form, errors=[r.message for r in reasons])
        """
        prepared = self._prepare(password)
        if isinstance(prepared, PasswordIssue):
            return (prepared,)
        if len(prepared.text) > self.max_length:
            return (self.issue("too-long"),)
        found: list[PasswordIssue] = []
        for rule in (self._short, self._common, self._context_word, self._patterns, self._breach, self._guess):
            found += rule(prepared, context)  # in the order the messages are shown
        return tuple(found)

    def check(self, password: object, context: Mapping[str, object] | None = None) -> None:
        """Raise :class:`WeakPassword` (with every reason) when ``password`` breaks a rule.

        Example::

            policy.check(new_password, context={"username": user.name})
            user.password_hash = hasher.hash(new_password)
        """
        found = self.reasons(password, context)
        if found:
            raise WeakPassword(found)

    def help_text(self) -> str:
        """What the policy asks for, in one sentence for a form's help text.

        Example::

            policy.help_text()   # "Use at least 15 characters. Avoid common passwords, ..."
        """
        return (
            f"Use at least {self.min_length} characters. Avoid common passwords, your own name or e-mail, "
            "and runs of repeated or sequential characters."
        )

    # ---- the rules: each gives the issues it finds, in the order :meth:`reasons` shows them -------------

    def _short(self, prepared: _Prepared, context: Mapping[str, object] | None) -> list[PasswordIssue]:
        return [self.issue("too-short")] if len(prepared.text) < self.min_length else []

    def _common(self, prepared: _Prepared, context: Mapping[str, object] | None) -> list[PasswordIssue]:
        listed = bool(prepared.folded) and self.blocklist.matches(prepared.folded)
        return [self.issue("common-password")] if listed else []

    def _context_word(self, prepared: _Prepared, context: Mapping[str, object] | None) -> list[PasswordIssue]:
        kind = matching_context(
            prepared.folded, context_tokens(fold_context(context, self._context_defaults, self.max_bytes))
        )
        if kind is None:
            return []
        return [self.issue("context-word", context=_CONTEXT_NAMES.get(kind, "personal details"))]

    def _patterns(self, prepared: _Prepared, context: Mapping[str, object] | None) -> list[PasswordIssue]:
        if not self.check_patterns:
            return []
        code = _pattern_code(fold(prepared.text, strip=False))  # spaces are a run too
        return [self.issue(code)] if code else []

    def _breach(self, prepared: _Prepared, context: Mapping[str, object] | None) -> list[PasswordIssue]:
        return [self.issue("breached-password")] if self._breached(prepared) else []

    def _guess(self, prepared: _Prepared, context: Mapping[str, object] | None) -> list[PasswordIssue]:
        return [self.issue("too-guessable")] if self._guessable(prepared.text, context) else []

    def _prepare(self, password: object) -> _Prepared | PasswordIssue:
        """The input policy: text, at most ``max_bytes`` UTF-8 bytes (checked before any work), no NUL."""
        checked = _checked_input(password, self.max_bytes)
        if isinstance(checked, _Refused):
            return self.issue(checked.code)
        text, raw = checked
        text = unicodedata.normalize(self.normalize, text) if self.normalize else text
        if len(text.encode("utf-8")) > self.max_bytes:
            return self.issue("too-long")
        return _Prepared(text, fold(text), raw)

    def _breached(self, prepared: _Prepared) -> bool:
        if self.pwned is None:
            return False
        # The corpus hashes passwords as typed; the normalised form is checked too when it differs.
        forms = dict.fromkeys((prepared.raw, prepared.text.encode("utf-8")))
        return any(self.pwned.count(form) > 0 for form in forms)

    def _guessable(self, text: str, context: Mapping[str, object] | None) -> bool:
        if self._estimate is None or self.min_score is None or not text:  # zxcvbn raises IndexError on ""
            return False
        inputs = [value for _, value in fold_context(context, self._context_defaults, self.max_bytes)]
        score = _score(self._estimate(text[:_ESTIMATE_CHARS], inputs))
        return score is not None and score < self.min_score


# ---- the input policy -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Refused:
    """The input policy's refusal of a password: the code of its issue (never the password)."""

    code: str


def _checked_input(password: object, limit: int) -> tuple[str, bytes] | _Refused:
    """The password as text and as UTF-8 (at most ``limit`` bytes, no NUL), or why it is refused."""
    text = _as_text(password, limit)
    if isinstance(text, _Refused):
        return text
    raw = _encoded(text, limit)
    return raw if isinstance(raw, _Refused) else (text, raw)


def _as_text(password: object, limit: int) -> str | _Refused:
    """The password as text: bytes are decoded (UTF-8, at most ``limit`` of them); anything else is not text."""
    if isinstance(password, bytes):
        return _decoded(password, limit)
    return password if isinstance(password, str) else _Refused("not-text")


def _decoded(password: bytes, limit: int) -> str | _Refused:
    if len(password) > limit:
        return _Refused("too-long")
    try:
        return password.decode("utf-8")
    except UnicodeDecodeError:
        return _Refused("invalid-character")


def _encoded(text: str, limit: int) -> bytes | _Refused:
    """``text`` as UTF-8 when it has no NUL and at most ``limit`` bytes, checked from the cheapest test on."""
    if len(text) > limit:  # each code point is at least one byte: refused before encoding it
        return _Refused("too-long")
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        return _Refused("invalid-character")
    return _bounded(text, raw, limit)


def _bounded(text: str, raw: bytes, limit: int) -> bytes | _Refused:
    if "\x00" in text:
        return _Refused("invalid-character")
    if len(raw) > limit:  # before NFKC, which may make the text 18 times longer (U+FDFA)
        return _Refused("too-long")
    return raw


# ---- the pure rules ---------------------------------------------------------------------------------------


def _pattern_code(folded: str) -> str | None:
    """``repeated-characters`` or ``sequential-characters`` when the text is mostly such runs, else None."""
    if len(folded) < 2:
        return None
    repeated, sequential = trivial_cover(folded)
    if is_periodic(folded) or repeated * 2 > len(folded):
        return "repeated-characters"
    return _mostly_runs(repeated, sequential, len(folded))


def _mostly_runs(repeated: int, sequential: int, size: int) -> str | None:
    """The code for a text of ``size`` characters that is more than half runs, named after the larger kind."""
    if (repeated + sequential) * 2 <= size:
        return None
    return "sequential-characters" if sequential >= repeated else "repeated-characters"


def _score(result: object) -> int | None:
    """zxcvbn's score in its answer, None when it holds none."""
    score = result.get("score") if isinstance(result, Mapping) else None
    return score if isinstance(score, int) else None


# ---- the settings -----------------------------------------------------------------------------------------


def _check_types(*, mfa: object, common_passwords: object, check_patterns: object, site_name: object) -> None:
    """The flags are True or False and the site name text (or None): ConfigurationError naming the argument."""
    for name, flag in (("mfa", mfa), ("common_passwords", common_passwords), ("check_patterns", check_patterns)):
        check_bool(name, flag)
    optional(check_str, "site_name", site_name, empty=True)


def _min_length(min_length: int | None, *, mfa: bool) -> int:
    """The minimum length asked for, else NIST's: 15 for a password alone, 8 with a second factor."""
    if min_length is not None:
        return min_length
    return NIST_MIN_WITH_MFA if mfa else NIST_MIN_SINGLE_FACTOR


def _check_lengths(min_length: int, max_length: int, max_bytes: int) -> None:
    for name, value in (("min_length", min_length), ("max_length", max_length), ("max_bytes", max_bytes)):
        if type(value) is not int:
            raise ConfigurationError(f"{name} must be an int.")
    _check_length_bounds(min_length, max_length, max_bytes)


def _check_length_bounds(min_length: int, max_length: int, max_bytes: int) -> None:
    if min_length < NIST_MIN_WITH_MFA:
        raise ConfigurationError(f"min_length must be at least {NIST_MIN_WITH_MFA} (NIST SP 800-63B).")
    if max_length < NIST_MAX_AT_LEAST or max_bytes < NIST_MAX_AT_LEAST:
        raise ConfigurationError(
            f"max_length and max_bytes must allow at least {NIST_MAX_AT_LEAST} characters (NIST SP 800-63B)."
        )
    if min_length > max_length or max_bytes > 1 << 20:
        raise ConfigurationError("min_length must not exceed max_length, nor max_bytes 1 MiB.")


def _check_normalize(normalize: object) -> None:
    if normalize not in (None, "NFC", "NFD", "NFKC", "NFKD"):
        raise ConfigurationError("normalize must be one of NFC, NFD, NFKC, NFKD or None.")


def _site_context(site_name: str | None) -> list[tuple[str, str]]:
    """The site's name as a context value, folded; none for no name or a blank one."""
    return [("site", fold(site_name))] if site_name and site_name.strip() else []


def _word_context(context_words: Iterable[str]) -> list[tuple[str, str]]:
    """The policy's context words, folded; blank ones are left out."""
    return [("words", fold(word)) for word in context_words if word.strip()]


def _pwned_file(pwned: PwnedPasswordsFile | str | Path | None) -> PwnedPasswordsFile | None:
    return PwnedPasswordsFile(pwned) if isinstance(pwned, (str, Path)) else pwned


def _check_score(min_score: object) -> None:
    if min_score is not None and not _is_score(min_score):
        raise ConfigurationError("min_score must be a zxcvbn score, 0 to 4.")


def _is_score(value: object) -> bool:
    """Whether ``value`` is a zxcvbn score: an int (not a bool) from 0 to 4."""
    return type(value) is int and 0 <= value <= 4


def _zxcvbn() -> _Estimator:
    """zxcvbn's estimator, as ``f(password, user_inputs) -> {"score": 0..4, ...}``; ConfigurationError without it."""
    try:
        from zxcvbn import zxcvbn
    except ImportError:
        raise ConfigurationError("min_score needs the 'zxcvbn' package (pip install zxcvbn).") from None

    def estimate(password: str, user_inputs: list[str]) -> object:
        result: object = zxcvbn(password, user_inputs=user_inputs)
        return result

    return estimate
