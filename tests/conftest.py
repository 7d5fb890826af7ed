"""Cross-cutting test suites (``tests/faults``): collect each fault drill's summary line and print them
all at the end of the run (also under ``pytest -n``: the lines travel in the reports' user properties)."""

import pytest

DRILL_PROPERTY = "fault_drill_summary"
_summaries: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":
        return
    for name, value in getattr(report, "user_properties", []):
        if name == DRILL_PROPERTY:
            _summaries.append(str(value))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    if _summaries:
        terminalreporter.section("fault drills")
        for line in sorted(_summaries):
            terminalreporter.write_line(line)
