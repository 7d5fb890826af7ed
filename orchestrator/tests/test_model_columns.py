"""The columns hand-written SQL names, read from a model's metadata (here: Django's own user model)."""

import pytest
from django.contrib.auth.models import User

from orchestrator.model_columns import column_name, concrete_field


def test_a_concrete_field_and_its_column():
    # Given a field stored in a column of its own name
    field = concrete_field(User, "username")

    # Then its column is that name
    assert column_name(field) == "username"
    assert column_name(User._meta.pk) == "id"


def test_a_relation_from_another_model_is_no_column():
    # Given the reverse side of the admin log's foreign key to users
    # Then it is refused: no column of the user table holds it
    with pytest.raises(TypeError, match="not a column"):
        concrete_field(User, "logentry")
