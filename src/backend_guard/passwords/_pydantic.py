"""A pydantic field for new passwords: ``Annotated[SecretStr, CheckedPassword(policy)]``.

The field validates to a :class:`pydantic.SecretStr` first and runs the policy on that, so a refusal's
``input`` (which FastAPI copies into its 422 body and pydantic into its error text) is the masked
``SecretStr('**********')``, never the password. The 422 says why: the error's ``msg`` joins the reasons'
messages and its ``ctx`` lists their codes and the numbers and context names the messages hold, from which
backend_guard's own 422 handlers state the same messages (they never read ``msg``).
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Any, TypeGuard

from pydantic import GetCoreSchemaHandler, SecretStr, ValidationInfo
from pydantic_core import PydanticCustomError, core_schema

from backend_guard.errors import state_field_errors
from backend_guard.exceptions import ConfigurationError
from backend_guard.passwords._policy import CONTEXT_NAMES, MESSAGES, PasswordIssue, PasswordPolicy

__all__ = ["CheckedPassword"]


class CheckedPassword:
    """Pydantic metadata that checks a ``SecretStr`` field against a :class:`PasswordPolicy`.

    Keyword arguments name the model's fields that give the policy its context: ``username="login"`` reads the
    ``login`` field as the username. Those fields must come *before* the password in the model (pydantic
    validates in order); a field that failed or is missing gives no context.

    Example::

        from typing import Annotated
        from pydantic import BaseModel, SecretStr

        policy = bg.PasswordPolicy()

        class SignUp(BaseModel):
            username: str
            password: Annotated[SecretStr, CheckedPassword(policy, username="username")]
    """

    def __init__(self, policy: PasswordPolicy, **context_fields: str) -> None:
        if not isinstance(policy, PasswordPolicy):
            raise ConfigurationError("CheckedPassword needs a PasswordPolicy.")
        self.policy = policy
        self.context_fields = dict(context_fields)

    def __repr__(self) -> str:
        return f"CheckedPassword({self.policy!r}, context_fields={self.context_fields!r})"

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        if source is not SecretStr:
            # A plain str field would put the password itself in every error's ``input``.
            raise ConfigurationError("CheckedPassword annotates a SecretStr field: Annotated[SecretStr, ...].")
        return core_schema.chain_schema(
            [handler(source), core_schema.with_info_plain_validator_function(self._validate)]
        )

    def _validate(self, value: SecretStr, info: ValidationInfo) -> SecretStr:
        reasons = self.policy.reasons(value.get_secret_value(), self._context(info))
        if reasons:
            raise _weak_password(reasons, self.policy)
        return value

    def _context(self, info: ValidationInfo) -> dict[str, str | None]:
        """The policy's context from the fields validated before the password (None for those that failed)."""
        data = info.data if isinstance(info.data, dict) else {}
        return {kind: _text(data.get(field)) for kind, field in self.context_fields.items()}


def _weak_password(reasons: tuple[PasswordIssue, ...], policy: PasswordPolicy) -> PydanticCustomError:
    """The ``weak_password`` error: the reasons' messages, and in ``ctx`` what restates them (codes, numbers,
    context names)."""
    return PydanticCustomError(
        "weak_password",
        " ".join(issue.message for issue in reasons),
        {
            "reasons": [issue.code for issue in reasons],
            "min_length": policy.min_length,
            "max_length": policy.max_length,
            "context": _context_names(reasons),
        },
    )


def _context_names(reasons: tuple[PasswordIssue, ...]) -> list[str]:
    """What the ``context-word`` reasons say the password contains."""
    return [issue.context for issue in reasons if issue.context]


def _text(value: object) -> str | None:
    """A context field's value as text (an ``EmailStr`` or a ``SecretStr`` too); None for anything else."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value if isinstance(value, str) else None


def _stated(ctx: object) -> str | None:
    """The messages of a ``weak_password`` error rebuilt from its ``ctx``: known codes, whole numbers and known
    context names only (anything else: None, and the 422 says "Invalid value.")."""
    if not isinstance(ctx, Mapping):
        return None
    checked = _checked(ctx)
    if checked is None:
        return None
    codes, contexts, numbers = checked
    return " ".join(MESSAGES[code].format(context=fill, **numbers) for code, fill in _fills(codes, contexts))


def _checked(ctx: Mapping[str, object]) -> tuple[list[str], list[str], Mapping[str, int]] | None:
    """The codes, context names and numbers of a ``ctx`` when each is one a message may state, else None."""
    codes, contexts = ctx.get("reasons"), ctx.get("context") or []
    numbers = {"min_length": ctx.get("min_length"), "max_length": ctx.get("max_length")}
    if _known(codes, MESSAGES) and _known(contexts, CONTEXT_NAMES) and _whole(numbers):
        return codes, contexts, numbers
    return None


def _whole(numbers: Mapping[str, object]) -> TypeGuard[Mapping[str, int]]:
    """True when every number is an int (not a bool: ``type`` is exact)."""
    return all(type(n) is int for n in numbers.values())


def _fills(codes: list[str], contexts: list[str]) -> zip[tuple[str, str]]:
    """Each code with its message's ``{context}``: the next context name for ``context-word`` ("details" when
    the names run out), "" for the others."""
    names = iter(contexts)
    fills = [next(names, "details") if code == "context-word" else "" for code in codes]
    return zip(codes, fills, strict=True)


def _known(values: object, known: Container[str]) -> TypeGuard[list[str]]:
    """True for a list holding only strings from ``known`` (what a message may state)."""
    return isinstance(values, list) and all(_known_text(v, known) for v in values)


def _known_text(value: object, known: Container[str]) -> bool:
    return isinstance(value, str) and value in known


state_field_errors("weak_password", _stated)
