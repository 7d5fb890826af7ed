"""Sample envelopes, one per detail-type (``events/tests/samples/<detail-type>.json``), and sbt-aws's events
as its code shapes them (``events/tests/samples/sbt/<detail-type>.json``, their origin in its README).

The same files feed the tests, the OpenAPI request examples and ``manage.py send_sample_event``.
"""

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from events.catalogue import DetailType
from events.dialects.sbt import PREFIX as SBT_PREFIX

SAMPLES_DIR = Path(__file__).resolve().parent / "tests" / "samples"
SBT_SAMPLES_DIR = SAMPLES_DIR / "sbt"


def sample_filename(detail_type: str) -> str:
    return detail_type.lower().replace(" ", "_") + ".json"


@cache
def _load(detail_type: str) -> dict[str, Any]:
    return json.loads((SAMPLES_DIR / sample_filename(detail_type)).read_text())


@cache
def _load_sbt(detail_type: str) -> dict[str, Any]:
    path = SBT_SAMPLES_DIR / f"{detail_type}.json"
    if not detail_type.startswith(SBT_PREFIX) or not path.is_file():
        raise KeyError(detail_type)
    return json.loads(path.read_text())


def sample_envelope(detail_type: str) -> dict[str, Any]:
    """A fresh copy of the sample envelope for ``detail_type``: a catalogue type, or one of sbt-aws's
    requests and answers (KeyError for anything else)."""
    if detail_type in DetailType.ALL:
        return copy.deepcopy(_load(detail_type))
    return copy.deepcopy(_load_sbt(detail_type))


def all_samples() -> dict[str, dict[str, Any]]:
    return {name: sample_envelope(name) for name in DetailType.ALL}
