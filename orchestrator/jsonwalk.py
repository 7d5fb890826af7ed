"""JSON-like values walked with an explicit stack, never by recursion.

Stored documents come from outside (events, tenants' documents), so how deep they nest is not ours to
choose: a walk that recursed once per level would fail on a value nested a few hundred levels deep (the
interpreter's recursion limit), whatever the caller wanted to do with it. ``rewrite`` serves sealing,
unsealing, masking and the DynamoDB mirror; ``depth_exceeded`` finds a value nested too deeply.

Text that is itself JSON (a string holding an object or array, such as the ``tenant`` build variable)
is recognised by ``json_container_text``; what to do with it is the caller's rule.
"""

import json
from collections.abc import Callable
from typing import Any

DROP: Any = object()  # ``on_secret``'s answer for "leave this key out"
_CONTAINERS = (dict, list, tuple)


class _Frame:
    """One container being walked: its copy is made the first time something under it changes."""

    __slots__ = ("copy", "key", "parent", "source")

    def __init__(self, source: Any, parent: "_Frame | None", key: Any) -> None:
        self.source, self.parent, self.key = source, parent, key
        self.copy: Any = None  # a dict or a list, indexed by the keys of either

    def writable(self) -> Any:
        """This container's copy, linked into its parents' copies (made as needed) up to the root."""
        if self.copy is None:
            self.copy = dict(self.source) if isinstance(self.source, dict) else list(self.source)
            child = self
            while child.parent is not None:
                parent = child.parent
                linked = parent.copy is not None
                if not linked:
                    parent.copy = dict(parent.source) if isinstance(parent.source, dict) else list(parent.source)
                parent.copy[child.key] = child.copy
                if linked:
                    break
                child = parent
        return self.copy


def rewrite(
    value: Any,
    *,
    is_secret_key: Callable[[str], bool] | None = None,
    on_secret: Callable[[Any], Any] | None = None,
    on_string: Callable[[str], Any] | None = None,
    string_starts: tuple[str, ...] = ("",),
) -> Any:
    """``value`` with every value under a key ``is_secret_key`` accepts replaced by ``on_secret(value)`` (or
    left out, for ``DROP``), and every other string that starts with one of ``string_starts`` by
    ``on_string(string)``.

    The very same object comes back when nothing changed, and unchanged containers are shared, not
    copied (only the path down to a change is new), so callers can skip work with ``is``. Tuples come
    back as lists when something inside them changed.
    """
    if isinstance(value, str):
        return on_string(value) if on_string is not None and value.startswith(string_starts) else value
    if not isinstance(value, _CONTAINERS):
        return value
    # Every accepted event is sealed on its way in: the loop is kept tight (leaves handled inline).
    root = _Frame(value, None, None)
    stack = [root]
    while stack:
        frame = stack.pop()
        source = frame.source
        is_mapping = isinstance(source, dict)
        key_check = is_secret_key if is_mapping else None
        for key, item in source.items() if is_mapping else enumerate(source):
            if key_check is not None and key_check(key if type(key) is str else str(key)):
                new = on_secret(item) if on_secret is not None else item
            elif type(item) is str:
                if on_string is None or not item.startswith(string_starts):
                    continue
                new = on_string(item)
            elif isinstance(item, _CONTAINERS):
                stack.append(_Frame(item, frame, key))
                continue
            else:
                continue
            if new is not item:
                copy = frame.writable()
                if new is DROP:
                    del copy[key]
                else:
                    copy[key] = new
    return value if root.copy is None else root.copy


# What a string holding an object or array starts with (``rewrite``'s ``string_starts``).
JSON_CONTAINER_STARTS = ("{", "[", " ", "\t", "\n", "\r")


def json_container_text(text: str) -> Any:
    """The object or array ``text`` encodes, or None when it encodes neither (most strings: decided by
    the first character, without parsing). Text too deeply nested for the parser counts as plain text."""
    first = text[:1]
    if first.isspace():
        first = text.lstrip()[:1]
    if first not in ("{", "["):
        return None
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict | list) else None


def compact_json(value: Any) -> str:
    """JSON as ``JSON.stringify`` writes it: no spaces, non-ASCII kept."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def depth_exceeded(value: Any, limit: int) -> str | None:
    """The path (``a.b[0]``) of the first container nested deeper than ``limit`` levels, or None. A
    container at the top is level 1."""
    # Entries: (container, its level, its trail); a trail is (key, parent's trail), joined into a path
    # only for the answer.
    stack: list[tuple[Any, int, tuple | None]] = [(value, 1, None)] if isinstance(value, _CONTAINERS) else []
    while stack:
        item, depth, trail = stack.pop()
        if depth > limit:
            return _path(trail)
        pairs = item.items() if isinstance(item, dict) else enumerate(item)
        stack.extend((child, depth + 1, (key, trail)) for key, child in pairs if isinstance(child, _CONTAINERS))
    return None


def _path(trail: tuple | None) -> str:
    keys = []
    while trail is not None:
        key, trail = trail
        keys.append(key)
    path = ""
    for key in reversed(keys):
        path += f"[{key}]" if isinstance(key, int) else (f".{key}" if path else str(key))
    return path or "(top level)"


def truncated(value: Any, levels: int, marker: str) -> Any:
    """A copy of ``value`` whose containers below ``levels`` levels are replaced by ``marker``."""
    if not isinstance(value, _CONTAINERS):
        return value
    result: Any = {} if isinstance(value, dict) else []
    stack = [(value, result, 1)]
    while stack:
        source, copy, depth = stack.pop()
        pairs = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in pairs:
            if isinstance(item, _CONTAINERS):
                if depth >= levels:
                    item = marker
                else:
                    child: Any = {} if isinstance(item, dict) else []
                    stack.append((item, child, depth + 1))
                    item = child
            if isinstance(copy, dict):
                copy[key] = item
            else:
                copy.append(item)
    return result
