"""Sample envelopes, one per detail-type (``events/tests/samples/<detail-type>.json``).

The same files feed the tests, the OpenAPI request examples and ``manage.py send_sample_event``.
"""

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from events.catalogue import DetailType

SAMPLES_DIR = Path(__file__).resolve().parent / "tests" / "samples"


def sample_filename(detail_type: str) -> str:
    return detail_type.lower().replace(" ", "_") + ".json"


@cache
def _load(detail_type: str) -> dict[str, Any]:
    return json.loads((SAMPLES_DIR / sample_filename(detail_type)).read_text())


def sample_envelope(detail_type: str) -> dict[str, Any]:
    """A fresh copy of the sample envelope for ``detail_type`` (KeyError if the catalogue lacks it)."""
    if detail_type not in DetailType.ALL:
        raise KeyError(detail_type)
    return copy.deepcopy(_load(detail_type))


def all_samples() -> dict[str, dict[str, Any]]:
    return {name: sample_envelope(name) for name in DetailType.ALL}
