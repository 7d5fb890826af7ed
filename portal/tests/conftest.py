"""The portal spans apps: its tests use the tenants tests' fixtures too."""

import pytest

from devstack.receivers import Receiver
from tenants.tests.conftest import codebuild_tier  # noqa: F401 - fixture


@pytest.fixture
def receiver():
    """A real HTTP receiver on 127.0.0.1."""
    server = Receiver()
    yield server
    server.close()
