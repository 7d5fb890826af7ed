"""The admin helpers that derive one option from another (``readonly_fields`` from ``fields``/``fieldsets``)."""

from orchestrator.admin_helpers import field_names, fieldset_fields


def test_field_names_lists_fields_grouped_on_one_line_too():
    # Given fields, two of them shown on one line
    fields = ["name", ("created_at", "updated_at"), "status"]

    # Then every field is named once, in order
    assert field_names(fields) == ["name", "created_at", "updated_at", "status"]


def test_fieldset_fields_are_the_fields_of_every_fieldset():
    # Given two fieldsets, one with a line of two fields
    fieldsets = [(None, {"fields": ["name"]}), ("Times", {"classes": ["collapse"], "fields": [("at", "until")]})]

    # Then their fields are listed in order
    assert fieldset_fields(fieldsets) == ["name", "at", "until"]
