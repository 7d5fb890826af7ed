"""``builderConfig.type`` → builder. An unknown type fails the tenant with the list of known ones."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tenants.builders.base import Builder, BuildRejected
from tenants.builders.codebuild import CodeBuildBuilder
from tenants.builders.local import LocalBuilder

_factories: dict[str, Callable[[], Builder]] = {
    CodeBuildBuilder.type: CodeBuildBuilder,
    LocalBuilder.type: LocalBuilder,
}
_overrides: dict[str, Builder] = {}


class UnknownBuilder(BuildRejected):
    code = "unknown_builder"


def known_types() -> list[str]:
    return sorted(_factories)


def builder_for(builder_type: str) -> Builder:
    if builder_type in _overrides:
        return _overrides[builder_type]
    factory = _factories.get(builder_type)
    if factory is None:
        raise UnknownBuilder(
            f"Unknown builder type {builder_type!r} in builderConfig.type; known types: {', '.join(known_types())}."
        )
    return factory()


@contextmanager
def override(builder_type: str, builder: Builder) -> Iterator[Builder]:
    """Use ``builder`` for ``builder_type`` inside the block (tests inject a fake CodeBuild client here)."""
    previous = _overrides.get(builder_type)
    _overrides[builder_type] = builder
    try:
        yield builder
    finally:
        if previous is None:
            _overrides.pop(builder_type, None)
        else:
            _overrides[builder_type] = previous
