"""Typed access to the model metadata that hand-written SQL is built from (table columns of concrete fields).

``Options.get_field`` is typed to return reverse relations too, and ``Field.column`` to be ``None`` (fields
without a column): these narrow both for the fields such SQL names, which always have one."""

from __future__ import annotations  # Field is generic only in the stubs

from typing import Any

from django.db import models


def concrete_field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field):
        raise TypeError(f"{model.__name__}.{name} is a relation from another model, not a column")
    return field


def column_name(field: models.Field[Any, Any]) -> str:
    if field.column is None:
        raise TypeError(f"{field} has no column")
    return field.column
