"""One place that decides what a secret looks like, used by logs, the admin and API output."""

import functools
import re
from collections.abc import Mapping
from typing import Any

MASK = "********"

# Keys whose values are secrets wherever they appear (event details, build environments, headers).
SECRET_KEY_PATTERN = re.compile(
    r"(secret|password|passwd|token|api[-_]?key|authorization|signature|credential|private[-_]?key)",
    re.IGNORECASE,
)
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
    """Return a copy of a JSON-like value with every secret-named key's value masked."""
    if isinstance(value, Mapping):
        return {
            key: (MASK if is_secret_key(str(key)) and item not in (None, "") else redact(item))
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


def redact_text(text: str, known_secrets: list[str] | tuple[str, ...] = ()) -> str:
    """Mask known secret values and secret-looking pairs inside free text (log lines, error messages)."""
    for secret in known_secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, MASK)
    text = _TEXT_PATTERNS[0].sub(MASK, text)
    return _TEXT_PATTERNS[1].sub(lambda m: f"{m['key']}{m['quote']}{MASK}", text)
