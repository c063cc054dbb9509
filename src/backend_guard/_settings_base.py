"""The base of the settings models: strict values, and problems named by their full dotted setting.

What lives here: :class:`Strict` (every model's configuration), :class:`Section` (a settings section: its
validation errors kept by name, and the fields a user set as a part's keyword arguments), :class:`SettingsError`
and :func:`problems` (how a validation error becomes one line per setting, never showing a value).
``backend_guard.config`` (the sections of the stack) and ``_browser_settings`` build on them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_validator
from pydantic_core import ErrorDetails

from .exceptions import ConfigurationError

__all__ = ["Section", "SettingsError", "Strict", "problems"]


class Strict(BaseModel):
    """Settings take values of their own type only: a flag is True or False, never 1 or "yes"; a number is never
    a bool or a string; NaN and infinities are refused; a list is a list (or a tuple) of strings, never one."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True, strict=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _tuple_as_list(cls, value: Any) -> Any:
        return list(value) if isinstance(value, tuple) else value


class Section(Strict):
    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as exc:
            raise SettingsError(problems(exc), type(self).__name__) from None

    def _kwargs(self, *exclude: str) -> dict[str, Any]:
        """The fields the user set, minus ``exclude`` and ``enabled``, as plain values."""
        out = {}
        for name in self.model_fields_set - {"enabled", *exclude}:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            out[name] = value
        return out


class SettingsError(ConfigurationError):
    """A settings section refused its values; ``problems`` keeps them so an enclosing model names each one
    by its full dotted name (``cors.allow_credentials``)."""

    def __init__(self, problems: list[tuple[str, str]], model: str) -> None:
        self.problems = problems
        super().__init__(f"Invalid {model}: " + "; ".join(f"{where}: {msg}" for where, msg in problems))


def problems(exc: ValidationError) -> list[tuple[str, str]]:
    """(dotted name, what is wrong) per problem, a section's own problems under its name; never the value."""
    return [problem for err in exc.errors(include_input=False, include_url=False) for problem in _errorproblems(err)]


def _errorproblems(err: ErrorDetails) -> list[tuple[str, str]]:
    """The problems of one pydantic error: a section's own, each under its dotted name, or the error itself."""
    where = ".".join(str(p) for p in err["loc"])
    inner = err.get("ctx", {}).get("error")
    if isinstance(inner, SettingsError):
        return _sectionproblems(where, inner)
    return [(where or "settings", err["msg"].removeprefix("Value error, "))]


def _sectionproblems(where: str, inner: SettingsError) -> list[tuple[str, str]]:
    """A section's own problems, each under its full dotted name (``cors.allow_credentials``)."""
    return [(f"{where}.{name}" if where else name, msg) for name, msg in inner.problems]
