"""One place that decides what a secret looks like, used by logs, the admin and API output.

The rule is a key's name (``is_secret_key``); sealing at rest (``orchestrator.sealing``), masking for staff
(``redact``) and the DynamoDB mirror all apply it, also inside strings that hold JSON (the ``tenant``
build variable is the tenant document as a JSON string).
"""

import functools
import json
import re
from collections.abc import Callable
from typing import Any

from orchestrator.jsonwalk import (
    DROP,
    JSON_CONTAINER_STARTS,
    compact_json,
    depth_exceeded,
    json_container_text,
    rewrite,
    truncated,
)

MASK = "********"

# Keys whose values are secrets wherever they appear (event details, build environments, headers), and
# ``context``: with ``secret``, what the original scheme signs control-plane callbacks with.
SECRET_KEY_PATTERN = re.compile(
    r"(secret|password|passwd|token|api[-_]?key|authorization|signature|credential|private[-_]?key)|^context$",
    re.IGNORECASE,
)
# Deeper than this, a value shown to people is cut (the JSON encoders recurse once per level).
DISPLAY_DEPTH = 100
# Secret-looking values inside free text: Standard Webhooks secrets and key=value / "key": "value" pairs.
_TEXT_PATTERNS = [
    re.compile(r"whsec_[A-Za-z0-9+/=]+"),
    re.compile(
        r"""(?P<key>["']?[\w-]*(?:secret|password|token|api[-_]?key|authorization)[\w-]*["']?\s*[:=]\s*)"""
        r"""(?P<quote>["']?)(?P<value>(?:Basic |Bearer |Token )?[^\s"',}&]+)""",
        re.IGNORECASE,
    ),
]


@functools.lru_cache(maxsize=4096)  # the same few keys come back in every event: a lookup, not a regex
def is_secret_key(key: str) -> bool:
    return bool(SECRET_KEY_PATTERN.search(key))


def redact(value: Any) -> Any:
    """A JSON-like value with every secret-named key's non-empty value masked, also inside strings that
    hold JSON (re-encoded compactly); the very same object when there is nothing to mask."""
    return secrets_replaced(value, _masked)


def secrets_left_out(value: Any) -> Any:
    """A JSON-like value without its secret-named keys, also inside strings that hold JSON (re-encoded
    compactly); the very same object when there is none."""
    return secrets_replaced(value, _left_out)


def _masked(item: Any) -> Any:
    return item if item is None or item == "" else MASK


def _left_out(item: Any) -> Any:
    return DROP


def secrets_replaced(
    value: Any, on_secret: Callable[[Any], Any], *, whole_text: Callable[[str], str] | None = None
) -> Any:
    """``value`` with every secret-named key's value replaced by ``on_secret(value)`` (``DROP``: left out),
    also inside strings that hold JSON. Such a string comes back re-encoded compactly; with ``whole_text``,
    a string that compact JSON would not give back exactly becomes ``whole_text(string)`` instead. The very
    same object when nothing changed."""

    def inside_text(text: str) -> str:
        parsed = json_container_text(text)
        if parsed is None:
            return text
        replaced = secrets_replaced(parsed, on_secret, whole_text=whole_text)
        if replaced is parsed:
            return text
        if whole_text is not None and compact_json(parsed) != text:
            return whole_text(text)
        return compact_json(replaced)

    return rewrite(
        value,
        is_secret_key=is_secret_key,
        on_secret=on_secret,
        on_string=inside_text,
        string_starts=JSON_CONTAINER_STARTS,
    )


def redacted_json(value: Any, **dumps_options: Any) -> str:
    """``value`` masked (``redact``) and encoded for people to read (``json.dumps`` options). A value nested
    deeper than ``DISPLAY_DEPTH`` levels is shown cut there, with a note where it was cut."""
    redacted = redact(value)
    if depth_exceeded(redacted, DISPLAY_DEPTH) is not None:
        redacted = truncated(redacted, DISPLAY_DEPTH, f"… nested deeper than {DISPLAY_DEPTH} levels, not shown")
    return json.dumps(redacted, **dumps_options)


def redact_text(text: str, known_secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Mask known secret values and secret-looking pairs inside free text (log lines, error messages)."""
    for secret in known_secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    text = _TEXT_PATTERNS[0].sub(MASK, text)
    return _TEXT_PATTERNS[1].sub(lambda m: f"{m['key']}{m['quote']}{MASK}", text)
