"""The portal spans apps: its tests use the tenants tests' fixtures too."""

from tenants.tests.conftest import codebuild_tier  # noqa: F401 - fixture
