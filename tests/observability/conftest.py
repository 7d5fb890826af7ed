"""The observability drills run a live stack like the fault drills, with the same fixtures."""

from tests.faults.conftest import basic_tier, drill_logs, make_stack, postgres_url  # noqa: F401
