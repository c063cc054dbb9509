"""Settings from the environment: the ``BACKEND_GUARD_...`` variables read into a dict of plain values, and a
framework's dict read over them (:meth:`backend_guard.config.GuardSettings.coerce`).

What the functions here decide: which variable names are settings (``BACKEND_GUARD_<FIELD>``,
``BACKEND_GUARD_<SECTION>__<FIELD>``; the tools' own names are not), how a value is read (JSON, else comma-separated
for a list), how a framework's dict goes over the environment (field by field, section by section), and what is
said of it (the names taken from the environment, once; a section the dict configures that the environment switches
off). Messages name settings and variables, never values.
"""

from __future__ import annotations

import difflib
import json
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from .exceptions import ConfigurationError

__all__ = ["ENV_PREFIX", "SWITCHES", "env_data", "over", "plain_sections", "tell_taken"]

ENV_PREFIX = "BACKEND_GUARD_"
#: Variables under the prefix that belong to the tests, CI and the demo (and Django's pepper settings), not to the
#: settings.
_NOT_SETTINGS = ("require_", "demo_", "digest_", "password_")
#: Sections switched on or off by a top-level boolean (``csrf=True``, ``BACKEND_GUARD_HTTPS_REDIRECT=true``).
SWITCHES = ("csrf", "https_redirect", "token_cookies")

log = logging.getLogger("backend_guard.config")


def env_data(fields: Mapping[str, FieldInfo], environ: Mapping[str, str], prefix: str) -> dict[str, Any]:
    """The settings the ``prefix...`` variables of ``environ`` give, as a dict of plain values (sections nested)."""
    data: dict[str, Any] = {}
    for raw_name, raw_value in environ.items():
        if raw_name.startswith(prefix):
            _read_env(fields, data, raw_name, raw_name[len(prefix) :].lower().split("__"), raw_value)
    return data


def plain_sections(given: dict[str, Any]) -> dict[str, Any]:
    """A framework's dict with each section as a dict of the fields it sets: ``csrf=True`` is the section's
    switch (``{"enabled": True}``), a section object the fields it was given."""
    out = {}
    for name, value in given.items():
        if name in SWITCHES and isinstance(value, bool):
            value = {"enabled": value}
        elif isinstance(value, BaseModel):
            value = value.model_dump(exclude_unset=True)
        out[name] = value
    return out


def over(fields: Mapping[str, FieldInfo], below: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """``given`` (:func:`plain_sections`) over ``below``, section by section: a field ``given`` sets wins, the
    rest of ``below`` stays."""
    out = dict(below)
    for name, value in given.items():
        under = out.get(name)
        section = name in fields and _is_section(fields[name])
        out[name] = {**under, **value} if section and isinstance(under, dict) and isinstance(value, dict) else value
    return out


def tell_taken(env: dict[str, Any], given: dict[str, Any], where: str) -> None:
    """Say (once) which settings the environment gives beside ``where``'s dict (:func:`plain_sections`), by name
    only, and warn where it switches off a section that dict configures (a leftover ``BACKEND_GUARD_CSRF=false``
    would otherwise end a protection without a word)."""
    taken = []
    for name, value in env.items():
        mine = given.get(name)
        if isinstance(value, dict):
            taken += [f"{name}.{field}" for field in value if not (isinstance(mine, dict) and field in mine)]
            if value.get("enabled") is False and mine and not (isinstance(mine, dict) and "enabled" in mine):
                _say_once(
                    logging.WARNING,
                    f"{where} configures {name}, and the environment ({ENV_PREFIX}{name.upper()} or "
                    f"{ENV_PREFIX}{name.upper()}__ENABLED) switches it off.",
                )
        elif name not in given:
            taken.append(name)
    if taken:
        _say_once(logging.INFO, f"{where}: taken from the environment: {', '.join(sorted(taken))}.")


#: What :func:`_say_once` has said (bounded by the settings' names: a message names settings, never values).
_said: set[str] = set()


def _say_once(level: int, message: str) -> None:
    if message not in _said:
        _said.add(message)
        log.log(level, message)


def _near(name: str, fields: Mapping[str, FieldInfo]) -> str:
    """``" (did you mean 'x'?)"`` for the setting closest to a misspelt ``name``, else ``""``."""
    found = difflib.get_close_matches(name, list(fields), n=1)
    return f" (did you mean {found[0]!r}?)" if found else ""


def _is_section(field: FieldInfo) -> bool:
    return isinstance(field.default, BaseModel)


def _read_env(fields: Mapping[str, FieldInfo], data: dict[str, Any], raw_name: str, path: list[str], raw: str) -> None:
    """Put the variable ``raw_name`` (its name under the prefix split at ``__`` into ``path``) into ``data``."""
    if len(path) == 1:
        _read_top_level(fields, data, raw_name, path[0], raw)
    elif len(path) == 2 and path[0] in fields and _is_section(fields[path[0]]):
        _read_section_field(fields[path[0]], data, raw_name, path, raw)
    else:
        raise ConfigurationError(
            f"environment variable {raw_name}: not a backend_guard setting{_near(path[0], fields)}."
        )


def _read_top_level(fields: Mapping[str, FieldInfo], data: dict[str, Any], raw_name: str, name: str, raw: str) -> None:
    if name in SWITCHES:  # BACKEND_GUARD_CSRF=true: the section's switch alone
        data.setdefault(name, {})["enabled"] = _env_value(raw, bool)
    elif name in fields and not _is_section(fields[name]):
        data[name] = _env_value(raw, fields[name].annotation)
    elif not name.startswith(_NOT_SETTINGS):
        # Top-level names are shared with tools (BACKEND_GUARD_REQUIRE_REDIS...): warn (once a name), don't fail.
        _say_once(logging.WARNING, f"{raw_name} is not a backend_guard setting; ignored.")


def _read_section_field(section: FieldInfo, data: dict[str, Any], raw_name: str, path: list[str], raw: str) -> None:
    fields = getattr(section.annotation, "model_fields", {})
    if path[1] not in fields:
        raise ConfigurationError(
            f"environment variable {raw_name}: {path[0]} has no setting {path[1]!r}{_near(path[1], fields)}."
        )
    data.setdefault(path[0], {})[path[1]] = _env_value(raw, fields[path[1]].annotation)


def _env_value(raw: str, annotation: Any) -> Any:
    """JSON when it parses (lists, numbers, booleans, objects), comma-separated for list fields, else text."""
    text = raw.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    if "list" in str(annotation) and not text.startswith("["):
        return _comma_separated(text)
    return raw


def _comma_separated(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]
