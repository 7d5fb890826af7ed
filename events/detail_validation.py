"""Event details validated by their DRF schemas, compiled once into plain functions.

Walking DRF's field objects costs about 0.1 ms per field and event, a tenth of the intake's CPU at its
rates. ``compile_schema`` turns a schema into nested closures that accept what is plainly valid and
return exactly what DRF returns for it. Whatever they are unsure of (an error, a coercion DRF would make,
such as ``"yes"`` for a boolean or ``5`` for a string, a field type or hook they do not know) makes them
give up, and the DRF schema itself decides and words the errors. The schemas stay the one definition
(and the OpenAPI document), and the two paths cannot disagree on a result.

Inputs are parsed JSON (``events.intake.envelope.body_parse``): dicts with str keys, lists, str, int, float,
bool and None; the compiled functions rely on that.
"""

from collections.abc import Callable
from typing import Any, cast

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import MaxLengthValidator, MinLengthValidator, ProhibitNullCharactersValidator
from rest_framework import serializers
from rest_framework.fields import _UnvalidatedField, empty
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from events.catalogue import AllowExtraFields

Validate = Callable[[Any], Any]


class Undecided(Exception):
    """The fast path cannot vouch for this input: let DRF decide."""


class CompiledSchema:
    """``schema.run_validation`` with a fast path for plainly valid details."""

    def __init__(self, schema: serializers.Serializer) -> None:
        self.schema = schema
        self.fast = _node(schema)

    def __call__(self, data: Any) -> Any:
        try:
            return self.fast(data)
        except Undecided:
            return self.schema.run_validation(data)


def compile_schema(schema: serializers.Serializer) -> CompiledSchema:
    return CompiledSchema(schema)


def _node(field: serializers.Field) -> Validate:
    """The fast validator of one field (or nested schema), without its empty-value handling."""
    # Exact types (a subclass may behave differently: DRF decides); ``isinstance`` narrows for the checker.
    kind = type(field)
    if kind in (serializers.ListSerializer, serializers.ListField) and isinstance(
        field, serializers.ListSerializer | serializers.ListField
    ):
        return _items(field)
    if isinstance(field, serializers.Serializer) and _plain_serializer(field):
        return _mapping(field)
    if kind in (serializers.CharField, serializers.RegexField, serializers.EmailField) and isinstance(
        field, serializers.CharField
    ):
        return _string(field)
    if type(field) is serializers.BooleanField:
        return _exact(field, lambda value: value is True or value is False)
    if type(field) is serializers.IntegerField:
        return _exact(field, lambda value: type(value) is int)
    if type(field) is serializers.ChoiceField:
        return _choice(field)
    if type(field) is serializers.JSONField and not field.binary:
        # Parsed JSON is always serialisable: DRF's json.dumps check cannot fail.
        return _exact(field, lambda value: True)
    if type(field) is serializers.DictField and type(field.child) is _UnvalidatedField:
        return _dict(field)
    return _drf(field)


def _plain_serializer(schema: serializers.Serializer) -> bool:
    """No hooks beyond the declared fields (no validate(), validate_<field>(), validators or sources)."""
    kind = type(schema)
    return (
        kind.to_internal_value in (serializers.Serializer.to_internal_value, AllowExtraFields.to_internal_value)
        and kind.validate is serializers.Serializer.validate
        and kind.run_validation is serializers.Serializer.run_validation
        and not schema.validators
        and all(
            field.source_attrs == [name] and not hasattr(schema, f"validate_{name}")
            for name, field in schema.fields.items()
        )
    )


def _with_empty_values(field: serializers.Field, validate: Validate) -> Validate:
    """DRF's ``validate_empty_values`` for a present value: None is valid (as None) only where allowed."""
    allow_null = field.allow_null

    def checked(value: Any) -> Any:
        if value is None:
            if allow_null:
                return None
            raise Undecided
        return validate(value)

    return checked


def _mapping(schema: serializers.Serializer) -> Validate:
    keep_extra = isinstance(schema, AllowExtraFields)
    fields = [
        (name, field.required, field.default is not empty, _with_empty_values(field, _node(field)))
        for name, field in schema.fields.items()
        if not field.read_only
    ]

    def validate(data: Any) -> dict[str, Any]:
        if type(data) is not dict:
            raise Undecided
        validated: dict[str, Any] = {}
        for name, required, has_default, child in fields:
            if name in data:
                validated[name] = child(data[name])
            elif required or has_default:
                raise Undecided
        if keep_extra:
            for key, value in data.items():
                validated.setdefault(key, value)
        return validated

    return validate


def _items(field: serializers.ListSerializer | serializers.ListField) -> Validate:
    """Lists (``many=True`` schemas and ListFields): each item by the child, refusing what allow_empty /
    min_length / max_length would."""
    assert field.child is not None  # both always have one (ListSerializer requires it, ListField defaults it)
    child = _with_empty_values(field.child, _node(field.child))
    # ListSerializer has min_length and max_length as well; its stubs declare them on ListField only.
    allow_empty, low, high = field.allow_empty, field.min_length, field.max_length  # type: ignore[union-attr]

    def validate(value: Any) -> list[Any]:
        if type(value) is not list:
            raise Undecided
        if (not allow_empty and not value) or (low is not None and len(value) < low):
            raise Undecided
        if high is not None and len(value) > high:
            raise Undecided
        return [child(item) for item in value]

    return validate


def _extra_validators(field: serializers.Field, handled: tuple[type, ...]) -> list[Callable[[Any], Any]]:
    extra = [validator for validator in field.validators if not isinstance(validator, handled)]
    if any(getattr(validator, "requires_context", False) for validator in extra):
        return [_undecided]  # validators that need the field: DRF's business
    return cast("list[Callable[[Any], Any]]", extra)  # none needs the context (checked above): value only


def _undecided(value: Any) -> None:
    raise Undecided


def _run(validators: list[Callable[[Any], Any]], value: Any) -> None:
    for validator in validators:
        try:
            validator(value)
        except (serializers.ValidationError, DjangoValidationError):
            raise Undecided from None


def _string(field: serializers.CharField) -> Validate:
    handled = (
        MaxLengthValidator,
        MinLengthValidator,
        ProhibitNullCharactersValidator,
        ProhibitSurrogateCharactersValidator,
    )
    extra = _extra_validators(field, handled)
    allow_blank, trim = field.allow_blank, field.trim_whitespace
    low, high = field.min_length, field.max_length

    def validate(value: Any) -> str:
        if type(value) is not str:  # DRF turns numbers into strings: rare enough to leave to it
            raise Undecided
        if trim:
            value = value.strip()
        if not value:
            if allow_blank:
                return ""
            raise Undecided
        if (high is not None and len(value) > high) or (low is not None and len(value) < low):
            raise Undecided
        if "\x00" in value or (not value.isascii() and not _encodable(value)):
            raise Undecided
        _run(extra, value)
        return value

    return validate


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates
        return False
    return True


def _exact(field: serializers.Field, accepts: Callable[[Any], bool]) -> Validate:
    """Fields that return a valid input as it is (DRF would coerce anything else: left to DRF)."""
    extra = _extra_validators(field, ())

    def validate(value: Any) -> Any:
        if not accepts(value):
            raise Undecided
        _run(extra, value)
        return value

    return validate


def _choice(field: serializers.ChoiceField) -> Validate:
    extra = _extra_validators(field, ())
    choices = dict(field.choice_strings_to_values)
    allow_blank = field.allow_blank

    def validate(value: Any) -> Any:
        if value == "" and allow_blank:
            return ""
        if type(value) is not str or value not in choices:
            raise Undecided
        chosen = choices[value]
        _run(extra, chosen)
        return chosen

    return validate


def _dict(field: serializers.DictField) -> Validate:
    extra = _extra_validators(field, ())
    allow_empty = field.allow_empty

    def validate(value: Any) -> dict[str, Any]:
        if type(value) is not dict or (not allow_empty and not value):
            raise Undecided
        copied = dict(value)  # keys of parsed JSON are already strings
        _run(extra, copied)
        return copied

    return validate


def _drf(field: serializers.Field) -> Validate:
    """A field the fast path does not know: DRF validates it, and any doubt goes to the whole schema."""

    def validate(value: Any) -> Any:
        try:
            return field.run_validation(value)
        except (serializers.ValidationError, DjangoValidationError, serializers.SkipField):
            raise Undecided from None

    return validate
