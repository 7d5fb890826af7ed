"""An endpoint's custom headers: what may be saved (``endpoint_validate``, for the API and the admin) and
what can be sent at all (checked again for every request, for endpoints saved before the first check).

A header that cannot be sent (a line break in its value, a name that is not an HTTP token) would fail every
delivery to the endpoint for the whole retry window and open its circuit: it is refused when saved.
"""

import re
from collections.abc import Mapping

from webhooks.signing import RESERVED_HEADERS, SIGNATURE_HEADERS

# RFC 9110 5.1: a field name is a token.
FIELD_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# RFC 9110 5.5, narrowed to what every client and server agrees on: visible ASCII, with spaces or tabs only
# between words. No CR, LF, NUL or other control character, and no non-ASCII (http.client sends Latin-1).
FIELD_VALUE = re.compile(r"[\x21-\x7e]+(?:[ \t]+[\x21-\x7e]+)*")
MAX_HEADERS = 20
MAX_NAME_CHARS = 128
MAX_VALUE_CHARS = 1024
MAX_TOTAL_CHARS = 8192


def header_unsendable(name: object, value: object) -> str:
    """Why this header cannot be put on a request ("" if it can)."""
    if not isinstance(name, str) or not FIELD_NAME.fullmatch(name):
        return f"{name!r}: not a valid header name (letters, digits and !#$%&'*+-.^_`|~ only)"
    if not isinstance(value, str):
        return f"{name}: the value must be a string"
    if value and not FIELD_VALUE.fullmatch(value):
        if re.search(r"[\r\n]", value):
            return f"{name}: the value contains a line break (CR or LF)"
        if re.search(r"[\x00-\x08\x0a-\x1f\x7f]", value):
            return f"{name}: the value contains a control character"
        if not value.isascii():
            return f"{name}: the value must be ASCII"
        return f"{name}: the value must not start or end with whitespace"
    return ""


def custom_headers_problems(headers: object) -> list[str]:
    """Every reason ``headers`` cannot be saved as an endpoint's custom headers (empty: they can)."""
    if not isinstance(headers, Mapping):
        return ["A JSON object of header names to string values."]
    problems: list[str] = []
    if len(headers) > MAX_HEADERS:
        problems.append(f"At most {MAX_HEADERS} headers.")
    seen: set[str] = set()
    for name, value in headers.items():
        if reason := header_unsendable(name, value):
            problems.append(reason)
            continue
        lowered = name.lower()
        if lowered in SIGNATURE_HEADERS:
            problems.append(f"{name}: not allowed, the orchestrator signs every call with it")
        elif lowered in RESERVED_HEADERS:
            problems.append(f"{name}: not allowed, the orchestrator or the connection sets it")
        elif lowered in seen:
            problems.append(f"{name}: given twice (header names are case-insensitive)")
        elif len(name) > MAX_NAME_CHARS or len(value) > MAX_VALUE_CHARS:
            problems.append(f"{name}: names of at most {MAX_NAME_CHARS} and values of {MAX_VALUE_CHARS} characters")
        seen.add(lowered)
    if not problems and sum(len(name) + len(value) for name, value in headers.items()) > MAX_TOTAL_CHARS:
        problems.append(f"At most {MAX_TOTAL_CHARS} characters of names and values together.")
    return problems


def custom_headers_unsendable(headers: Mapping[str, object]) -> str:
    """The first reason one of ``headers`` cannot be sent ("" if all can); reserved names are dropped when
    the request is built, so they are not a reason here."""
    return next((reason for name, value in headers.items() if (reason := header_unsendable(name, value))), "")
