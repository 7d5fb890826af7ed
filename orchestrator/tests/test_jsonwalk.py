"""Walking JSON-like values with an explicit stack: copy on write, keys left out, depth, any nesting."""

from orchestrator.jsonwalk import DROP, depth_exceeded, json_container_text, rewrite, truncated


def nested(levels: int, leaf: dict) -> dict:
    """``{"a": {"a": ... leaf}}`` with ``levels`` objects above ``leaf``."""
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def bottom(value: dict) -> dict:
    while "a" in value:
        value = value["a"]
    return value


def test_only_the_path_to_a_change_is_copied():
    untouched = {"x": [1, 2]}
    value = {"keep": untouched, "change": {"secret": "s", "n": 1}}

    rewritten = rewrite(value, is_secret_key=lambda key: key == "secret", on_secret=lambda item: "hidden")

    assert rewritten == {"keep": {"x": [1, 2]}, "change": {"secret": "hidden", "n": 1}}
    assert rewritten["keep"] is untouched
    assert value["change"]["secret"] == "s"  # the input is never changed
    assert rewrite(untouched, is_secret_key=lambda key: True, on_secret=lambda item: item) is untouched


def test_drop_leaves_a_key_out_and_strings_are_offered_by_their_start():
    value = {"token": "t", "items": ["{json}", "plain", ("{tuple}",)]}

    rewritten = rewrite(
        value,
        is_secret_key=lambda key: key == "token",
        on_secret=lambda item: DROP,
        on_string=str.upper,
        string_starts=("{",),
    )

    assert rewritten == {"items": ["{JSON}", "plain", ["{TUPLE}"]]}


def test_ten_thousand_levels_are_walked_without_recursion():
    deep = nested(10_000, {"secret": "s"})

    rewritten = rewrite(deep, is_secret_key=lambda key: key == "secret", on_secret=lambda item: "hidden")

    assert bottom(rewritten) == {"secret": "hidden"}
    assert bottom(deep) == {"secret": "s"}


def test_depth_exceeded_names_the_first_container_too_deep():
    assert depth_exceeded(nested(3, {}), 4) is None
    assert depth_exceeded(nested(4, {}), 4) == "a.a.a.a"
    assert depth_exceeded({"list": [[{"x": []}]]}, 3) == "list[0][0]"
    assert depth_exceeded([[]], 1) == "[0]"
    assert depth_exceeded(nested(10_000, {}), 64).count(".") == 63


def test_truncated_cuts_below_a_level():
    assert truncated(nested(3, {"v": 1}), 2, "cut") == {"a": {"a": "cut"}}
    assert truncated([1, [2, [3]]], 2, "cut") == [1, [2, "cut"]]


def test_json_container_text_parses_objects_and_arrays_only():
    assert json_container_text('  {"a": 1}') == {"a": 1}
    assert json_container_text("[1]") == [1]
    assert json_container_text('"text"') is None
    assert json_container_text("{not json") is None
    assert json_container_text("[" * 5000 + "]" * 5000) is None  # deeper than the parser goes: plain text
