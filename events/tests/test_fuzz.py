"""Never a 500: arbitrary JSON bodies and mutations of valid events get a 2xx or a 4xx, never a 5xx."""

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from events.catalogue import DetailType
from events.samples import sample_envelope

from .conftest import post_event

pytestmark = pytest.mark.django_db

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
FIELDS = ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values)
def test_arbitrary_json_is_never_a_server_error(client, recorder, body):
    response = post_event(client, json.dumps(body))

    assert response.status_code < 500, response.content
    assert "error" in response.json()


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    detail_type=st.sampled_from(DetailType.ALL),
    field=st.sampled_from(FIELDS),
    value=json_values,
    detail_key=st.text(max_size=20),
    detail_value=json_values,
)
def test_mutated_events_are_never_a_server_error(client, recorder, detail_type, field, value, detail_key, detail_value):
    body = sample_envelope(detail_type)
    body[field] = value
    if isinstance(body.get("detail"), dict):
        body["detail"][detail_key] = detail_value

    response = post_event(client, json.dumps(body))

    assert response.status_code in (200, 202, 400, 409), response.content
