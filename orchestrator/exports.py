"""Records as JSON Lines, secrets masked, and where exports are kept (S3 or a directory).

``record_line`` turns one model row into one line: every concrete column, secret-named values masked
(``orchestrator.redaction.redact``), secret-looking text inside free-text columns masked (``redact_text``), and
encrypted columns (webhook secrets, request bodies) as their masked text. ``export_store`` keeps a finished
export: in ``TENANT_EXPORT_BUCKET`` (S3, the place for deployments whose disks do not outlive a container)
or, without a bucket, under ``TENANT_EXPORT_DIR``.
"""

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from orchestrator.aws import aws_client
from orchestrator.redaction import redact, redact_text


class _MaskingEncoder(DjangoJSONEncoder):
    def default(self, o: Any) -> Any:
        try:
            return super().default(o)
        except TypeError:
            return str(o)  # e.g. webhooks' SecretValue: its str() is the masked text


def _masked(value: Any) -> Any:
    return redact_text(value) if isinstance(value, str) else redact(value)


def record_line(kind: str, row: models.Model, **extra: Any) -> str:
    """One JSON line: ``{"record": kind, **extra, "data": {column: value}}`` with secrets masked."""
    data = {field.attname: _masked(getattr(row, field.attname)) for field in row._meta.concrete_fields}
    return json.dumps({"record": kind, **extra, "data": data}, cls=_MaskingEncoder, sort_keys=False) + "\n"


def header_line(**fields: Any) -> str:
    return json.dumps({"record": "export", **fields}, cls=_MaskingEncoder) + "\n"


def export_store(*, name: str, lines: Iterable[str]) -> str:
    """Write the lines as ``name`` where exports are kept; returns where (``s3://...`` or a path). The file
    is complete when this returns (written to a temporary name, synced, then renamed)."""
    if settings.TENANT_EXPORT_BUCKET:
        key = settings.TENANT_EXPORT_PREFIX + name
        body = "".join(lines).encode()
        aws_client("s3").put_object(
            Bucket=settings.TENANT_EXPORT_BUCKET, Key=key, Body=body, ContentType="application/x-ndjson"
        )
        return f"s3://{settings.TENANT_EXPORT_BUCKET}/{key}"
    directory = Path(settings.TENANT_EXPORT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    partial = path.with_name(path.name + ".partial")
    with partial.open("w", encoding="utf-8") as handle:
        handle.writelines(lines)
        handle.flush()
        os.fsync(handle.fileno())
    partial.replace(path)
    return str(path)
