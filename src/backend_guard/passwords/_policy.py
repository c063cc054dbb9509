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
        if min_length is None:
            min_length = NIST_MIN_WITH_MFA if mfa else NIST_MIN_SINGLE_FACTOR
        _check_lengths(min_length, max_length, max_bytes)
        if normalize not in (None, "NFC", "NFD", "NFKC", "NFKD"):
            raise ConfigurationError("normalize must be one of NFC, NFD, NFKC, NFKD or None.")
        self.min_length, self.max_length, self.max_bytes = min_length, max_length, max_bytes
        self.normalize: NormalForm | None = normalize
        self.blocklist = Blocklist(shipped=common_passwords, words=blocklist, files=blocklist_files)
        defaults = [("site", fold(site_name))] if site_name and site_name.strip() else []
        defaults += [("words", fold(word)) for word in context_words if word.strip()]
        self._context_defaults = tuple(defaults)
        self.check_patterns = check_patterns
        self.pwned = PwnedPasswordsFile(pwned) if isinstance(pwned, (str, Path)) else pwned
        if min_score is not None and (type(min_score) is not int or not 0 <= min_score <= 4):
            raise ConfigurationError("min_score must be a zxcvbn score, 0 to 4.")
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
        if len(prepared.text) < self.min_length:
            found.append(self.issue("too-short"))
        if prepared.folded and self.blocklist.matches(prepared.folded):
            found.append(self.issue("common-password"))
        kind = matching_context(
            prepared.folded, context_tokens(fold_context(context, self._context_defaults, self.max_bytes))
        )
        if kind is not None:
            found.append(self.issue("context-word", context=_CONTEXT_NAMES.get(kind, "personal details")))
        if self.check_patterns:
            found.extend(self._pattern_issues(fold(prepared.text, strip=False)))  # spaces are a run too
        if self.pwned is not None and self._breached(prepared):
            found.append(self.issue("breached-password"))
        if self._estimate is not None and self._guessable(prepared.text, context):
            found.append(self.issue("too-guessable"))
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

    # ---- the rules -----------------------------------------------------------------------------------

    def _prepare(self, password: object) -> _Prepared | PasswordIssue:
        """The input policy: text, at most ``max_bytes`` UTF-8 bytes (checked before any work), no NUL."""
        limit = self.max_bytes
        if isinstance(password, bytes):
            if len(password) > limit:
                return self.issue("too-long")
            try:
                password = password.decode("utf-8")
            except UnicodeDecodeError:
                return self.issue("invalid-character")
        if not isinstance(password, str):
            return self.issue("not-text")
        if len(password) > limit:  # each code point is at least one byte: refused before encoding it
            return self.issue("too-long")
        try:
            raw = password.encode("utf-8")
        except UnicodeEncodeError:
            return self.issue("invalid-character")
        if "\x00" in password:
            return self.issue("invalid-character")
        if len(raw) > limit:  # before NFKC, which may make the text 18 times longer (U+FDFA)
            return self.issue("too-long")
        text = unicodedata.normalize(self.normalize, password) if self.normalize else password
        if len(text.encode("utf-8")) > limit:
            return self.issue("too-long")
        return _Prepared(text, fold(text), raw)

    def _pattern_issues(self, folded: str) -> list[PasswordIssue]:
        if len(folded) < 2:
            return []
        repeated, sequential = trivial_cover(folded)
        if is_periodic(folded) or repeated * 2 > len(folded):
            return [self.issue("repeated-characters")]
        if (repeated + sequential) * 2 > len(folded):
            code = "sequential-characters" if sequential >= repeated else "repeated-characters"
            return [self.issue(code)]
        return []

    def _breached(self, prepared: _Prepared) -> bool:
        assert self.pwned is not None
        # The corpus hashes passwords as typed; the normalised form is checked too when it differs.
        forms = dict.fromkeys((prepared.raw, prepared.text.encode("utf-8")))
        return any(self.pwned.count(form) > 0 for form in forms)

    def _guessable(self, text: str, context: Mapping[str, object] | None) -> bool:
        assert self._estimate is not None
        assert self.min_score is not None
        if not text:  # zxcvbn raises IndexError on "" (too-short says enough)
            return False
        inputs = [value for _, value in fold_context(context, self._context_defaults, self.max_bytes)]
        result = self._estimate(text[:_ESTIMATE_CHARS], inputs)
        score = result.get("score") if isinstance(result, Mapping) else None
        return isinstance(score, int) and score < self.min_score


def _check_types(*, mfa: object, common_passwords: object, check_patterns: object, site_name: object) -> None:
    """The flags are True or False and the site name text (or None): ConfigurationError naming the argument."""
    for name, flag in (("mfa", mfa), ("common_passwords", common_passwords), ("check_patterns", check_patterns)):
        check_bool(name, flag)
    optional(check_str, "site_name", site_name, empty=True)


def _check_lengths(min_length: int, max_length: int, max_bytes: int) -> None:
    for name, value in (("min_length", min_length), ("max_length", max_length), ("max_bytes", max_bytes)):
        if type(value) is not int:
            raise ConfigurationError(f"{name} must be an int.")
    if min_length < NIST_MIN_WITH_MFA:
        raise ConfigurationError(f"min_length must be at least {NIST_MIN_WITH_MFA} (NIST SP 800-63B).")
    if max_length < NIST_MAX_AT_LEAST or max_bytes < NIST_MAX_AT_LEAST:
        raise ConfigurationError(
            f"max_length and max_bytes must allow at least {NIST_MAX_AT_LEAST} characters (NIST SP 800-63B)."
        )
    if min_length > max_length or max_bytes > 1 << 20:
        raise ConfigurationError("min_length must not exceed max_length, nor max_bytes 1 MiB.")


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
