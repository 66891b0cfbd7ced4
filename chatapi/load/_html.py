"""The HTML report of a load run: one self-contained file, charts drawn as inline SVG.

Nothing is fetched when the file is opened (no scripts, fonts or styles from the network),
so the report can be mailed, archived or opened offline.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from ._stats import LoadReport

__all__ = ["render_html"]

_WIDTH, _HEIGHT, _PAD = 640, 220, 44
_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")
_STYLE = """
body { font: 14px system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 0.25em 0.8em; text-align: right; border-bottom: 1px solid #ddd; }
th:first-child, td:first-child { text-align: left; }
svg { background: #fafafa; border: 1px solid #ddd; }
.legend span { margin-right: 1.5em; }
"""


def _series_chart(
    title: str, unit: str, xs: Sequence[float], series: dict[str, Sequence[float | None]]
) -> str:
    """A line chart of one or more series over the run's seconds."""
    values = [v for line in series.values() for v in line if v is not None]
    top = max(values, default=0.0) or 1.0
    right = max(xs, default=0.0) or 1.0
    inner_w, inner_h = _WIDTH - 2 * _PAD, _HEIGHT - 2 * _PAD

    def point(x: float, y: float) -> str:
        return f"{_PAD + inner_w * x / right:.1f},{_HEIGHT - _PAD - inner_h * y / top:.1f}"

    parts = [_axes(top, right, unit)]
    legend = []
    for colour, (name, line) in zip(_COLOURS, series.items(), strict=False):
        points = [point(x, y) for x, y in zip(xs, line, strict=True) if y is not None]
        if points:
            parts.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                f'points="{" ".join(points)}"/>'
            )
        legend.append(f'<span style="color:{colour}">&#9632; {html.escape(name)}</span>')
    return _figure(title, "".join(parts), legend)


def _histogram(title: str, values: Sequence[float], bins: int = 30) -> str:
    """A histogram of ``values`` (seconds, shown in ms)."""
    if not values:
        return _figure(title, _axes(1.0, 1.0, "streams"), ["no data"])
    low, high = min(values), max(values)
    width = (high - low) / bins or 1e-9
    counts = [0] * bins
    for value in values:
        counts[min(int((value - low) / width), bins - 1)] += 1
    top = max(counts)
    inner_w, inner_h = _WIDTH - 2 * _PAD, _HEIGHT - 2 * _PAD
    bar_w = inner_w / bins
    bars = []
    for index, count in enumerate(counts):
        height = inner_h * count / top
        bars.append(
            f'<rect x="{_PAD + index * bar_w:.1f}" y="{_HEIGHT - _PAD - height:.1f}" '
            f'width="{max(bar_w - 1, 1):.1f}" height="{height:.1f}" fill="{_COLOURS[0]}">'
            f"<title>{(low + index * width) * 1e3:.1f}-{(low + (index + 1) * width) * 1e3:.1f}"
            f" ms: {count}</title></rect>"
        )
    labels = (
        f'<text x="{_PAD}" y="{_HEIGHT - _PAD + 16}">{low * 1e3:.1f} ms</text>'
        f'<text x="{_WIDTH - _PAD}" y="{_HEIGHT - _PAD + 16}" text-anchor="end">'
        f"{high * 1e3:.1f} ms</text>"
    )
    return _figure(title, _axes(float(top), 0.0, "streams", x_labels=False) + "".join(bars)
                   + labels, [])


def _axes(top: float, right: float, unit: str, *, x_labels: bool = True) -> str:
    bottom, left = _HEIGHT - _PAD, _PAD
    parts = [
        f'<line x1="{left}" y1="{bottom}" x2="{_WIDTH - _PAD}" y2="{bottom}" stroke="#888"/>',
        f'<line x1="{left}" y1="{_PAD}" x2="{left}" y2="{bottom}" stroke="#888"/>',
        f'<text x="{left - 4}" y="{_PAD + 4}" text-anchor="end">{_number(top)}</text>',
        f'<text x="{left - 4}" y="{bottom}" text-anchor="end">0</text>',
        f'<text x="{left}" y="{_PAD - 10}">{html.escape(unit)}</text>',
    ]
    if x_labels:
        parts.append(
            f'<text x="{_WIDTH - _PAD}" y="{bottom + 16}" text-anchor="end">'
            f"{_number(right)} s</text>"
        )
    return "".join(parts)


def _number(value: float) -> str:
    return f"{value:.3g}" if math.isfinite(value) else "-"


def _figure(title: str, body: str, legend: list[str]) -> str:
    return (
        f"<h2>{html.escape(title)}</h2>"
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
        f'font-size="11" role="img" aria-label="{html.escape(title)}">{body}</svg>'
        f'<div class="legend">{"".join(legend)}</div>'
    )


def _ms(value: float | int | None) -> str:
    return "-" if value is None else f"{value * 1e3:.1f}"


def _tables(report: LoadReport) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{summary['count']}</td>"
        + "".join(f"<td>{_ms(summary[k])}</td>" for k in ("p50", "p90", "p95", "p99", "max"))
        + "</tr>"
        for name, summary in report.metrics.items()
    )
    streams = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in report.streams.items()
    )
    if report.server is not None:
        streams += f"<tr><td>completed by the server</td><td>{report.server['completed']}</td></tr>"
    throughput = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v:.1f}</td></tr>"
        for k, v in report.throughput.items()
    )
    errors = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>" for k, v in report.errors.items()
    ) or "<tr><td>none</td><td></td></tr>"
    settings = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in report.config.items()
        if v is not None
    )
    return (
        "<h2>Latency (ms)</h2><table><tr><th>metric</th><th>count</th><th>p50</th><th>p90</th>"
        f"<th>p95</th><th>p99</th><th>max</th></tr>{rows}</table>"
        f"<h2>Streams</h2><table>{streams}</table>"
        f"<h2>Throughput (per second)</h2><table>{throughput}</table>"
        f"<h2>Errors</h2><table>{errors}</table>"
        f"<h2>Settings</h2><table>{settings}</table>"
    )


def render_html(report: LoadReport) -> str:
    """The report as one HTML document with inline SVG charts."""
    timeline = report.timeline
    xs = [float(row["t"]) + 1 for row in timeline]

    def column(key: str, scale: float = 1.0) -> list[float | None]:
        return [None if row[key] is None else row[key] * scale for row in timeline]

    charts = [
        _series_chart(
            "Latency percentiles over time (streams ending in each second)",
            "ms",
            xs,
            {
                "TTFT p50": column("ttft_p50", 1e3),
                "TTFT p95": column("ttft_p95", 1e3),
                "end to end p50": column("total_p50", 1e3),
                "end to end p95": column("total_p95", 1e3),
            },
        ),
        _histogram("Time to first token", report.ttft_values),
        _series_chart(
            "Throughput and errors over time",
            "streams per second",
            xs,
            {"completed": column("completed"), "failed": column("failed")},
        ),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>chatapi load report</title>"
        f"<style>{_STYLE}</style></head><body><h1>chatapi load report</h1>"
        f"{_tables(report)}{''.join(charts)}</body></html>\n"
    )
