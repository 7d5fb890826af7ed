"""Charts as inline SVG, drawn on the server: no script, no chart library, nothing fetched by the browser.

Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that says in words what it shows
(for screen readers and for anyone who would rather read), and every series or bar carries its values in
``data-`` attributes (what the browser test reads). Every text is escaped.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH = 640
PLOT_LEFT = 200
PLOT_RIGHT = 70
BAR_HEIGHT = 14
BAR_GAP = 6


@dataclass(frozen=True)
class Line:
    key: str
    label: str
    values: Sequence[int]


@dataclass(frozen=True)
class Bar:
    key: str
    label: str
    value: float
    shown: str  # the value as people read it ("42", "1 m 30 s")
    group: str = ""


def _frame(*, chart_id: str, title: str, desc: str, height: int, body: SafeString) -> SafeString:
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="portal-chart" id="{id}" role="img" '
        'aria-labelledby="{id}-title {id}-desc" viewBox="0 0 {w} {h}" width="100%" preserveAspectRatio="xMinYMin meet">'
        '<title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>{body}</svg>',
        id=chart_id,
        w=WIDTH,
        h=height,
        title=title,
        desc=desc,
        body=body,
    )


def line_chart(*, chart_id: str, title: str, lines: Sequence[Line], x_labels: tuple[str, str]) -> SafeString:
    """One polyline per series over the same x positions; a legend with each series' total."""
    height, top, plot_height = 190, 10, 130
    points = max((len(line.values) for line in lines), default=0)
    peak = max((max(line.values, default=0) for line in lines), default=0) or 1
    step = (WIDTH - PLOT_LEFT - PLOT_RIGHT) / max(points - 1, 1)
    bottom = top + plot_height

    def polyline(line: Line) -> SafeString:
        coordinates = " ".join(
            f"{PLOT_LEFT + index * step:.1f},{bottom - value / peak * plot_height:.1f}"
            for index, value in enumerate(line.values)
        )
        return format_html(
            '<polyline class="series series-{key}" data-series="{key}" data-values="{values}" data-total="{total}" '
            'points="{points}" fill="none"/>',
            key=line.key,
            values=",".join(str(value) for value in line.values),
            total=sum(line.values),
            points=coordinates,
        )

    legend = format_html_join(
        "",
        '<text class="legend series-{}" x="6" y="{}">{}: {}</text>',
        ((line.key, top + 14 + index * 16, line.label, sum(line.values)) for index, line in enumerate(lines)),
    )
    axes = format_html(
        '<line class="axis" x1="{l}" y1="{b}" x2="{r}" y2="{b}"/>'
        '<line class="axis" x1="{l}" y1="{t}" x2="{l}" y2="{b}"/>'
        '<text class="tick" x="{l}" y="{by}">{first}</text>'
        '<text class="tick" x="{r}" y="{by}" text-anchor="end">{last}</text>'
        '<text class="tick" x="{lt}" y="{ty}" text-anchor="end">{peak}</text>',
        l=PLOT_LEFT,
        r=WIDTH - PLOT_RIGHT,
        t=top,
        b=bottom,
        by=bottom + 16,
        lt=PLOT_LEFT - 4,
        ty=top + 10,
        first=x_labels[0],
        last=x_labels[1],
        peak=peak,
    )
    totals = ", ".join(f"{line.label} {sum(line.values)}" for line in lines) or "nothing"
    desc = f"{title}, from {x_labels[0]} to {x_labels[1]}: {totals}; at most {peak} in one minute."
    body = mark_safe(axes + legend + "".join(polyline(line) for line in lines))  # noqa: S308 - built by format_html
    return _frame(chart_id=chart_id, title=title, desc=desc, height=height, body=body)


def bar_chart(*, chart_id: str, title: str, bars: Sequence[Bar], empty: str = "No data.") -> SafeString:
    """Horizontal bars, one row each, scaled to the largest; the value written after each bar."""
    if not bars:
        return _frame(
            chart_id=chart_id,
            title=title,
            desc=empty,
            height=30,
            body=format_html('<text class="empty" x="6" y="20">{}</text>', empty),
        )
    peak = max(bar.value for bar in bars) or 1
    span = WIDTH - PLOT_LEFT - PLOT_RIGHT
    rows = []
    for index, bar in enumerate(bars):
        y = 6 + index * (BAR_HEIGHT + BAR_GAP)
        width = bar.value / peak * span
        rows.append(
            format_html(
                '<g class="bar bar-{key}" data-bar="{key}" data-group="{group}" data-value="{value}">'
                '<text class="label" x="{lx}" y="{ty}" text-anchor="end">{label}</text>'
                '<rect x="{x}" y="{y}" width="{w}" height="{h}"/>'
                '<text class="value" x="{vx}" y="{ty}">{shown}</text></g>',
                key=bar.key,
                group=bar.group,
                value=f"{bar.value:g}",
                lx=PLOT_LEFT - 6,
                ty=y + BAR_HEIGHT - 3,
                label=bar.label,
                x=PLOT_LEFT,
                y=y,
                w=f"{width:.1f}",
                h=BAR_HEIGHT,
                vx=f"{PLOT_LEFT + width + 4:.1f}",
                shown=bar.shown,
            )
        )
    desc = f"{title}: " + "; ".join(f"{bar.label} {bar.shown}" for bar in bars) + "."
    height = 12 + len(bars) * (BAR_HEIGHT + BAR_GAP)
    return _frame(chart_id=chart_id, title=title, desc=desc, height=height, body=mark_safe("".join(rows)))  # noqa: S308


def duration_text(seconds: float) -> str:
    """``95`` -> ``1 m 35 s``; ``7260`` -> ``2 h 1 m``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} m {secs} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} m"
