"""Validation errors as field errors: a JSON pointer, a type and a message this library wrote.

What lives here: the fixed message of each pydantic error type (never pydantic's ``msg``, ``input``, ``ctx`` or
``url``, which may quote what was submitted), the numeric schema constraints a message may state, and the pointer
that stops before a name the client wrote (an undeclared field, a mapping key that failed validation).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._model import FieldError

__all__ = ["state_field_errors", "validation_field_errors"]

#: Error types a part of this library raises from its own validators, with the function that states why from
#: the error's ``ctx`` (its fixed codes and numbers, never the input); see :func:`state_field_errors`.
_STATED: dict[str, Callable[[object], str | None]] = {}


def state_field_errors(kind: str, state: Callable[[object], str | None]) -> None:
    """Let one of the library's own validators say why a field failed: ``state(ctx)`` builds the message.

    A 422's messages are never taken from ``msg`` (an app's validator may quote the input there); a type
    registered here gets the message ``state`` builds from the error's ``ctx`` instead, which must read only
    codes and numbers it knows (returning None falls back to the fixed message). ``CheckedPassword`` registers
    ``weak_password`` so a refused password's 422 lists the policy's reasons.

    Example::

        state_field_errors("weak_password", lambda ctx: "Use at least 15 characters.")
    """
    _STATED[kind] = state


def _escape_pointer(part: object) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


#: The one message each pydantic error type gets in a response body, written here: never pydantic's ``msg``
#: (for ``value_error``, ``assertion_error`` and custom errors that is the app's own text, which may quote the
#: input; for others it is filled from ``ctx``, which may hold the input or parts of it), nor ``input``, ``ctx``
#: or ``url``. A type not listed gets :data:`_GENERIC_FIELD_MESSAGE`.
_FIELD_MESSAGES: Mapping[str, str] = {
    "missing": "Field required",
    "missing_argument": "Missing required argument",
    "missing_keyword_only_argument": "Missing required keyword only argument",
    "missing_positional_only_argument": "Missing required positional only argument",
    "unexpected_keyword_argument": "Unexpected keyword argument",
    "unexpected_positional_argument": "Unexpected positional argument",
    "multiple_argument_values": "Got multiple values for argument",
    "arguments_type": "Arguments must be a tuple, list or a dictionary",
    "extra_forbidden": "Extra inputs are not permitted",
    "frozen_field": "Field is frozen",
    "frozen_instance": "Instance is frozen",
    "json_invalid": "Invalid JSON",
    "json_type": "JSON input should be string, bytes or bytearray",
    "recursion_loop": "Recursion error - cyclic reference detected",
    "recursion_depth_exceeded": "Recursion error - maximum validation depth exceeded",
    "invalid_key": "Keys should be strings",
    "model_type": "Input should be an object",
    "model_attributes_type": "Input should be a valid dictionary or object to extract fields from",
    "dataclass_type": "Input should be an object",
    "dataclass_exact_type": "Input should be an object of the expected type",
    "named_tuple_type": "Input should be a valid named tuple",
    "is_instance_of": "Input should be an instance of the expected type",
    "is_subclass_of": "Input should be a subclass of the expected type",
    "callable_type": "Input should be callable",
    "none_required": "Input should be None",
    "literal_error": "Input should be one of the allowed values",
    "enum": "Input should be one of the allowed values",
    "union_tag_invalid": "Input tag does not match any of the expected tags",
    "union_tag_not_found": "Unable to extract the tag using the discriminator",
    "string_type": "Input should be a valid string",
    "string_unicode": "Input should be a valid string, unable to parse raw data as a unicode string",
    "string_not_ascii": "String should contain only ASCII characters",
    "string_pattern_mismatch": "String should match the required pattern",
    "string_too_short": "String is too short",
    "string_too_long": "String is too long",
    "bytes_type": "Input should be a valid bytes",
    "bytes_invalid_encoding": "Data should be valid in the expected encoding",
    "bytes_too_short": "Data is too short",
    "bytes_too_long": "Data is too long",
    "bool_type": "Input should be a valid boolean",
    "bool_parsing": "Input should be a valid boolean, unable to interpret input",
    "int_type": "Input should be a valid integer",
    "int_parsing": "Input should be a valid integer, unable to parse string as an integer",
    "int_parsing_size": "Unable to parse input string as an integer, exceeded maximum size",
    "int_from_float": "Input should be a valid integer, got a number with a fractional part",
    "float_type": "Input should be a valid number",
    "float_parsing": "Input should be a valid number, unable to parse string as a number",
    "finite_number": "Input should be a finite number",
    "greater_than": "Input is too small",
    "greater_than_equal": "Input is too small",
    "less_than": "Input is too large",
    "less_than_equal": "Input is too large",
    "multiple_of": "Input should be a multiple of the required step",
    "decimal_type": "Decimal input should be an integer, float, string or Decimal object",
    "decimal_parsing": "Input should be a valid decimal",
    "decimal_max_digits": "Decimal input has too many digits",
    "decimal_max_places": "Decimal input has too many decimal places",
    "decimal_whole_digits": "Decimal input has too many digits before the decimal point",
    "fraction_type": "Fraction input should be an integer, float, string or Fraction object",
    "fraction_parsing": "Input is not a valid fraction",
    "complex_type": "Input should be a valid complex number",
    "complex_str_parsing": "Input should be a valid complex string",
    "iterable_type": "Input should be iterable",
    "iteration_error": "Error iterating over the input",
    "too_short": "Input has too few items",
    "too_long": "Input has too many items",
    "dict_type": "Input should be a valid dictionary",
    "mapping_type": "Input should be a valid mapping",
    "list_type": "Input should be a valid list",
    "tuple_type": "Input should be a valid tuple",
    "set_type": "Input should be a valid set",
    "frozen_set_type": "Input should be a valid frozenset",
    "set_item_not_hashable": "Set items should be hashable",
    "date_type": "Input should be a valid date",
    "date_parsing": "Input should be a valid date",
    "date_from_datetime_parsing": "Input should be a valid date",
    "date_from_datetime_inexact": "Datetimes provided to dates should have zero time - e.g. be exact dates",
    "date_past": "Date should be in the past",
    "date_future": "Date should be in the future",
    "time_type": "Input should be a valid time",
    "time_parsing": "Input should be in a valid time format",
    "datetime_type": "Input should be a valid datetime",
    "datetime_parsing": "Input should be a valid datetime",
    "datetime_object_invalid": "Invalid datetime object",
    "datetime_from_date_parsing": "Input should be a valid datetime or date",
    "datetime_past": "Input should be in the past",
    "datetime_future": "Input should be in the future",
    "timezone_naive": "Input should not have timezone info",
    "timezone_aware": "Input should have timezone info",
    "timezone_offset": "Timezone offset is not the expected one",
    "time_delta_type": "Input should be a valid timedelta",
    "time_delta_parsing": "Input should be a valid timedelta",
    "url_type": "URL input should be a string or URL",
    "url_parsing": "Input should be a valid URL",
    "url_syntax_violation": "Input violates strict URL syntax rules",
    "url_too_long": "URL is too long",
    "url_scheme": "URL scheme is not permitted",
    "uuid_type": "UUID input should be a string, bytes or UUID object",
    "uuid_parsing": "Input should be a valid UUID",
    "uuid_version": "UUID version is not the expected one",
    # The app's own validators: their text is the app's and may quote what was submitted.
    "value_error": "Invalid value.",
    "assertion_error": "Invalid value.",
}
_GENERIC_FIELD_MESSAGE = "Invalid value."
#: Constraints a message may state, by error type: (ctx key, message with ``{}`` for the value). pydantic-core
#: fills these keys from the schema (``Field(min_length=8)``), never from the input; and only an ``int`` or a
#: finite ``float`` is used (never text, never ``actual_length``, which is measured on the input), else the
#: plain message above.
_FIELD_CONSTRAINTS: Mapping[str, tuple[str, str]] = {
    "string_too_short": ("min_length", "String should have at least {} characters"),
    "string_too_long": ("max_length", "String should have at most {} characters"),
    "bytes_too_short": ("min_length", "Data should have at least {} bytes"),
    "bytes_too_long": ("max_length", "Data should have at most {} bytes"),
    "too_short": ("min_length", "Input should have at least {} items"),
    "too_long": ("max_length", "Input should have at most {} items"),
    "url_too_long": ("max_length", "URL should have at most {} characters"),
    "greater_than": ("gt", "Input should be greater than {}"),
    "greater_than_equal": ("ge", "Input should be greater than or equal to {}"),
    "less_than": ("lt", "Input should be less than {}"),
    "less_than_equal": ("le", "Input should be less than or equal to {}"),
    "multiple_of": ("multiple_of", "Input should be a multiple of {}"),
    "decimal_max_digits": ("max_digits", "Decimal input should have no more than {} digits in total"),
    "decimal_max_places": ("decimal_places", "Decimal input should have no more than {} decimal places"),
    "decimal_whole_digits": ("whole_digits", "Decimal input should have no more than {} digits before the point"),
}
# Error types whose last location segment is a name the client wrote and the schema does not declare.
_UNDECLARED_NAME_TYPES = frozenset({"extra_forbidden", "unexpected_keyword_argument"})
# pydantic-core's marker after a mapping key that failed validation: the segment before it is the client's key.
_KEY_MARKER = "[key]"
# An error type is an identifier; anything else (a custom type built from the input) is shown as value_error.
_ERROR_TYPE_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _field_message(kind: str, ctx: object) -> str:
    """The fixed message of error type ``kind``, stating a schema constraint from ``ctx`` where one applies."""
    stated = _STATED.get(kind)
    if stated is not None:
        message = stated(ctx)
        if message:
            return message
    constraint = _FIELD_CONSTRAINTS.get(kind)
    if constraint is not None and isinstance(ctx, Mapping):
        key, template = constraint
        value = _statable(ctx.get(key))
        if value is not None:
            return template.format(value)
    return _FIELD_MESSAGES.get(kind, _GENERIC_FIELD_MESSAGE)


def _statable(value: object) -> int | str | None:
    """A constraint value fit for a message: an ``int`` (below 10**18) as it is, a finite ``float`` by its repr;
    None for anything else (text, booleans, huge or non-finite numbers)."""
    if type(value) is int and abs(value) < 10**18:
        return value
    if type(value) is float and math.isfinite(value):
        return repr(value)
    return None


def _field_type(raw: object) -> str:
    kind = raw if isinstance(raw, str) else ""
    if kind in _FIELD_MESSAGES:
        return kind
    if 0 < len(kind) <= 64 and _ERROR_TYPE_CHARS.issuperset(kind):
        return kind
    return "value_error"


def _declared_loc(loc: tuple[object, ...], kind: str) -> tuple[object, ...]:
    """``loc`` up to the first segment that is not the schema's but the client's own text.

    A field name the schema does not declare (``extra="forbid"``) and a mapping key that failed validation are
    whatever was submitted (a password pasted as a field name); the pointer stops at the object holding them.
    """
    if _KEY_MARKER in loc:
        return loc[: max(0, loc.index(_KEY_MARKER) - 1)]
    if kind in _UNDECLARED_NAME_TYPES:
        return loc[:-1]
    return loc


def validation_field_errors(items: Iterable[Mapping[str, Any]]) -> tuple[FieldError, ...]:
    """Pydantic-style error dicts as :class:`FieldError` s: the location, the type and a fixed message.

    The message is chosen from the error type (``missing`` -> ``"Field required"``; the app's own validators,
    ``value_error``/``assertion_error`` and custom types, -> ``"Invalid value."``), never taken from ``msg``,
    which a validator may have written with the submitted value in it. ``input``, ``ctx`` and ``url`` are
    dropped; only a numeric schema constraint (``min_length``, ``gt``...) may be stated in the message. The
    pointer ends before a name the schema refused (an undeclared field, a mapping key that failed validation).

    Example::

        >>> validation_field_errors([{"loc": ("body", "email"), "msg": "Field required", "type": "missing"}])
        (FieldError(pointer='/body/email', message='Field required', type='missing'),)
    """
    return tuple(_field_error(item) for item in items)


def _field_error(item: Mapping[str, Any]) -> FieldError:
    kind = _field_type(item.get("type"))
    loc = _declared_loc(_loc_of(item), kind)
    return FieldError(pointer=_pointer(loc), message=_field_message(kind, item.get("ctx")), type=kind)


def _loc_of(item: Mapping[str, Any]) -> tuple[object, ...]:
    loc = item.get("loc") or ()
    return (loc,) if isinstance(loc, (str, int)) else tuple(loc)


def _pointer(loc: tuple[object, ...]) -> str:
    return "/" + "/".join(_escape_pointer(p) for p in loc) if loc else ""
