"""The compiled detail validators return exactly what the DRF schemas return, and leave every doubt to DRF."""

import copy
import random
from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework import serializers

from events.catalogue import DETAIL_SCHEMAS, AllowExtraFields, DetailType
from events.detail_validation import Undecided, compile_schema
from events.samples import sample_envelope

# Values swapped in at every path of every sample: blanks, padding, coercions DRF makes, wrong types.
REPLACEMENTS: list[Any] = [
    None,
    "",
    "   ",
    "  padded  ",
    "x" * 300,
    "caf\u00e9",
    "a\x00b",
    "yes",
    "1",
    "SUCCEEDED",
    "not-an-email",
    "ops@example.com",
    "bad key!",
    5,
    0,
    1.5,
    True,
    False,
    [],
    [{}],
    ["a"],
    {},
    {"id": "t-1"},
]


def _paths(value: Any, path: tuple = ()) -> Iterator[tuple]:
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*path, index))


def _replaced(detail: dict, path: tuple, value: Any) -> dict:
    changed = copy.deepcopy(detail)
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = copy.deepcopy(value)
    return changed


def _deleted(detail: dict, path: tuple) -> dict:
    changed = copy.deepcopy(detail)
    target = changed
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return changed


def _variants(detail: dict) -> Iterator[dict]:
    for path in list(_paths(detail))[1:]:
        for value in REPLACEMENTS:
            yield _replaced(detail, path, value)
        if isinstance(path[-1], str):
            yield _deleted(detail, path)
    yield {**detail, "unknownExtra": {"kept": True}}


def _outcome(validate, detail: dict) -> tuple[str, Any]:
    try:
        return "valid", validate(copy.deepcopy(detail))
    except serializers.ValidationError as error:
        return "invalid", error.detail


@pytest.mark.parametrize("detail_type", DetailType.ALL)
def test_samples_take_the_fast_path_and_match_drf(detail_type):
    schema = DETAIL_SCHEMAS[detail_type]()
    detail = sample_envelope(detail_type)["detail"]

    fast = compile_schema(schema).fast(copy.deepcopy(detail))

    assert fast == schema.run_validation(copy.deepcopy(detail))


@pytest.mark.parametrize("detail_type", DetailType.ALL)
def test_every_mutation_gets_drfs_answer(detail_type):
    schema = DETAIL_SCHEMAS[detail_type]()
    compiled = compile_schema(schema)
    decided_fast = refused = 0

    for detail in _variants(sample_envelope(detail_type)["detail"]):
        expected = _outcome(schema.run_validation, detail)
        assert _outcome(compiled, detail) == expected, detail
        try:
            fast = compiled.fast(copy.deepcopy(detail))
        except Undecided:
            refused += expected[0] == "invalid"
            continue
        decided_fast += 1
        assert expected == ("valid", fast), detail  # the fast path never accepts what DRF refuses

    assert decided_fast > 0  # both paths were exercised
    assert refused > 0


def test_random_documents_get_drfs_answer():
    schema = DETAIL_SCHEMAS[DetailType.TENANT_PROVISIONING]()
    compiled = compile_schema(schema)
    base = sample_envelope(DetailType.TENANT_PROVISIONING)["detail"]
    rng = random.Random(8)
    paths = list(_paths(base))[1:]
    for _ in range(300):
        detail = base
        for _ in range(rng.randint(1, 4)):
            path = rng.choice(paths)
            try:
                detail = _replaced(detail, path, rng.choice(REPLACEMENTS))
            except (KeyError, IndexError, TypeError):  # an earlier change removed the path
                continue
        assert _outcome(compiled, detail) == _outcome(schema.run_validation, detail)


class HookedSchema(AllowExtraFields):
    name = serializers.CharField()
    size = serializers.DecimalField(max_digits=4, decimal_places=1, required=False)

    def validate_name(self, value: str) -> str:
        if value == "forbidden":
            raise serializers.ValidationError("Not this one.")
        return value.upper()


class Outer(AllowExtraFields):
    inner = HookedSchema()
    tags = serializers.ListField(child=serializers.CharField(max_length=3), max_length=2, required=False)


@pytest.mark.parametrize(
    "detail",
    [
        {"inner": {"name": "ok"}},
        {"inner": {"name": "forbidden"}},
        {"inner": {"name": "ok", "size": "12.5"}},
        {"inner": {"name": "ok", "size": "123.45"}},
        {"inner": {"name": "ok"}, "tags": ["a", "b"]},
        {"inner": {"name": "ok"}, "tags": ["a", "b", "c"]},
        {"inner": {"name": "ok"}, "tags": ["abcd"]},
        {"inner": {"name": "ok"}, "tags": [None]},
    ],
)
def test_hooks_and_unknown_fields_are_left_to_drf(detail):
    schema = Outer()

    assert _outcome(compile_schema(schema), detail) == _outcome(schema.run_validation, detail)


def test_a_nested_schema_with_hooks_is_validated_by_drf_inside_the_fast_path():
    fast = compile_schema(Outer()).fast

    assert fast({"inner": {"name": "ok"}, "tags": ["a"]}) == {"inner": {"name": "OK"}, "tags": ["a"]}
    with pytest.raises(Undecided):  # the hook refused: DRF words the error for the whole detail
        fast({"inner": {"name": "forbidden"}})
