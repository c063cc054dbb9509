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
from backend_guard.passwords._policy import CONTEXT_NAMES, MESSAGES, PasswordPolicy

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
        data = info.data if isinstance(info.data, dict) else {}
        context = {kind: _text(data.get(field)) for kind, field in self.context_fields.items()}
        reasons = self.policy.reasons(value.get_secret_value(), context)
        if reasons:
            raise PydanticCustomError(
                "weak_password",
                " ".join(issue.message for issue in reasons),
                {
                    "reasons": [issue.code for issue in reasons],
                    "min_length": self.policy.min_length,
                    "max_length": self.policy.max_length,
                    "context": [issue.context for issue in reasons if issue.context],
                },
            )
        return value


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
    codes, contexts = ctx.get("reasons"), ctx.get("context") or []
    numbers = {"min_length": ctx.get("min_length"), "max_length": ctx.get("max_length")}
    if not _known(codes, MESSAGES) or not _known(contexts, CONTEXT_NAMES):
        return None
    if not all(type(n) is int for n in numbers.values()):
        return None
    names = iter(contexts)
    fills = [next(names, "details") if code == "context-word" else "" for code in codes]
    return " ".join(MESSAGES[code].format(context=fill, **numbers) for code, fill in zip(codes, fills, strict=True))


def _known(values: object, known: Container[str]) -> TypeGuard[list[str]]:
    """True for a list holding only strings from ``known`` (what a message may state)."""
    return isinstance(values, list) and all(isinstance(v, str) and v in known for v in values)


state_field_errors("weak_password", _stated)
