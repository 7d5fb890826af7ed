"""The dashboard's charts: windowed aggregate reads (one query each), drawn as accessible inline SVG, cached."""

import re

import pytest
from django.db import connection
from django.utils import timezone

from events.models import EventStatus
from orchestrator.tests.factories import staff_user
from portal.charts import dashboard_charts
from portal.svg import Bar, Line, bar_chart, duration_text, line_chart
from portal.tests.factories import seed_dashboard_activity

pytestmark = pytest.mark.django_db
# The onboarding chart's p50/p95 come from PostgreSQL's percentile_cont; on SQLite the chart says it needs it.
NEEDS_PERCENTILES = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="onboarding percentiles need PostgreSQL (percentile_cont)"
)


@NEEDS_PERCENTILES
def test_the_charts_count_what_happened_in_their_windows(django_assert_num_queries):
    # Given activity in and out of the windows
    now = timezone.now()
    seeded = seed_dashboard_activity(now)

    # When the charts are read (one query each)
    with django_assert_num_queries(3):
        charts = dashboard_charts(now=now)

    # Then events per minute are counted by outcome in their minute, the older one left out
    series = {line.name: line.values for line in charts.events.series}
    assert len(series[EventStatus.PROCESSED]) == 60
    for status, values in series.items():
        expected = [seeded.events.get(index, {}).get(status, 0) for index in range(60)]
        assert values == expected, status
    # onboarding p50/p95 per tier over the last 24 h
    assert {row.tier: (row.p50_seconds, row.p95_seconds) for row in charts.onboarding} == seeded.onboarding
    assert {row.tier: row.count for row in charts.onboarding} == {"BASIC": 5, "PREMIUM": 1}
    # deliveries created in the last 24 h by outcome
    assert {status: count for status, _label, count in charts.deliveries if count} == seeded.deliveries


def test_the_charts_are_cached_briefly(settings, django_assert_num_queries):
    settings.DASHBOARD_CHARTS_CACHE_SECONDS = 30
    from django.core.cache import cache

    cache.clear()
    first = dashboard_charts()
    with django_assert_num_queries(0):
        again = dashboard_charts()
    assert again == first
    cache.clear()


def test_a_line_chart_is_an_accessible_svg_with_its_values():
    svg = line_chart(
        chart_id="c",
        title="Events <per> minute",
        lines=[Line("processed", "Processed", [0, 2, 4]), Line("failed", "Failed", [1, 0, 0])],
        x_labels=("10:00", "10:02 UTC"),
    )

    assert svg.startswith("<svg")
    assert 'role="img"' in svg
    assert '<title id="c-title">Events &lt;per&gt; minute</title>' in svg
    assert "Processed 6, Failed 1; at most 4 in one minute." in svg
    assert 'data-series="processed" data-values="0,2,4" data-total="6"' in svg
    # the highest value touches the top of the plot, zero its bottom
    points = re.search(r'data-series="processed".*?points="([^"]+)"', svg).group(1).split()
    assert [float(point.split(",")[1]) for point in points] == [140.0, 75.0, 10.0]


def test_a_bar_chart_scales_to_its_largest_bar_and_says_when_empty():
    svg = bar_chart(
        chart_id="b", title="Deliveries", bars=[Bar("succeeded", "Succeeded", 4, "4"), Bar("failed", "Failed", 1, "1")]
    )
    assert re.search(r'data-bar="succeeded".*?<rect [^>]*width="370.0"', svg)
    assert re.search(r'data-bar="failed".*?<rect [^>]*width="92.5"', svg)
    assert "Deliveries: Succeeded 4; Failed 1." in svg

    empty = bar_chart(chart_id="e", title="Onboarding", bars=[], empty="Nothing yet.")
    assert "Nothing yet." in empty
    assert "<rect" not in empty


@pytest.mark.parametrize(("seconds", "text"), [(42.4, "42 s"), (95, "1 m 35 s"), (7260, "2 h 1 m")])
def test_durations_read_as_people_say_them(seconds, text):
    assert duration_text(seconds) == text


@NEEDS_PERCENTILES
def test_the_dashboard_shows_the_charts_to_staff_who_may_view_tenants(client):
    seed_dashboard_activity(timezone.now())
    client.force_login(staff_user("read_only"))

    html = client.get("/admin/").content.decode()

    assert 'id="chart-events"' in html
    assert 'id="chart-onboarding"' in html
    assert 'id="chart-deliveries"' in html
    assert 'data-bar="BASIC-p95" data-group="BASIC" data-value="288"' in html
