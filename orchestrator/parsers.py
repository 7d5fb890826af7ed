"""JSON request bodies nested deeper than ``JSON_MAX_DEPTH`` are refused when parsed (400), at the intake
(``events.intake.envelope.body_parse``) and on the staff API (``DepthLimitedJSONParser``, the default parser).

Nothing legitimate nests deeply (an event's detail: under ten levels), while every recursive step after
parsing (Django's and DRF's own encoders, validators) has a limit of its own near a thousand: a body
refused here never reaches them.
"""

import io
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework.parsers import JSONParser

# The module, not its names: DRF imports this parser while orchestrator.errors is still importing DRF.
from orchestrator import errors
from orchestrator.jsonwalk import depth_exceeded


def json_too_deep(path: str) -> "errors.JSONTooDeep":
    limit = settings.JSON_MAX_DEPTH
    return errors.JSONTooDeep(
        f"The JSON body is nested deeper than {limit} levels.",
        fields={path: [f"Nested deeper than {limit} levels (JSON_MAX_DEPTH)."]},
    )


def json_depth_check(data: Any, *, raw: bytes) -> None:
    """Refuse ``data`` (parsed from ``raw``) when it nests deeper than ``JSON_MAX_DEPTH``; the field named is
    the first container too deep. A body with fewer brackets than the limit is not walked at all."""
    limit = settings.JSON_MAX_DEPTH
    if raw.count(b"{") + raw.count(b"[") <= limit:
        return
    path = depth_exceeded(data, limit)
    if path is not None:
        raise json_too_deep(path)


class DepthLimitedJSONParser(JSONParser):
    """DRF's JSON parser, refusing bodies nested too deeply with a structured 400 instead of failing later."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        raw = stream.read()
        try:
            data = super().parse(io.BytesIO(raw), media_type, parser_context)
        except RecursionError:  # deeper than the JSON decoder itself goes
            raise json_too_deep("body") from None
        json_depth_check(data, raw=raw)
        return data
