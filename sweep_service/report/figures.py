"""The page's plotly figures, as plotly JSON (plotly imported when first drawn): parallel coordinates and
importance bars per rule, learning curves per rule with stopped-early and diverged trials marked."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

from sweep_service import ranking
from sweep_service.numbers import finite
from sweep_service.report.axes import _axes, _param_label, _sample
from sweep_service.report.model import RuleSummary, SweepAnalysis
from sweep_service.status import TrialStatus

# Caps that bound the file's size and the time to build it, whatever the sweep's size.
MAX_CURVES_PER_RULE = 150
MAX_POINTS_PER_CURVE = 300
MAX_PARCOORDS_LINES_PER_RULE = 1000

STATUS_STYLE = {
    TrialStatus.FINISHED.value: {"color": "#4c78a8", "dash": "solid", "symbol": "circle"},
    TrialStatus.STOPPED_EARLY.value: {"color": "#9d9d9d", "dash": "dot", "symbol": "line-ns-open"},
    TrialStatus.DIVERGED.value: {"color": "#d62728", "dash": "dash", "symbol": "x"},
    TrialStatus.FAILED.value: {"color": "#ff7f0e", "dash": "dashdot", "symbol": "triangle-down"},
    TrialStatus.CANCELLED.value: {"color": "#bcbcbc", "dash": "longdash", "symbol": "square-open"},
    TrialStatus.RUNNING.value: {"color": "#72b7b2", "dash": "solid", "symbol": "circle-open"},
    TrialStatus.PENDING.value: {"color": "#bcbcbc", "dash": "solid", "symbol": "circle-open"},
    TrialStatus.PAUSED.value: {"color": "#72b7b2", "dash": "dot", "symbol": "circle-open"},
}
ENDS_MARKED = (TrialStatus.STOPPED_EARLY, TrialStatus.DIVERGED, TrialStatus.FAILED)  # a marker at the last value
BEST_COLOR = "#e6a100"


def _hover_params(params: Mapping[str, Any], limit: int = 8) -> str:
    items = [f"{html.escape(str(k))}={html.escape(_param_label(v))}" for k, v in sorted(params.items())[:limit]]
    return "<br>".join(items)


def _parcoords_figure(
    summary: RuleSummary, analysis: SweepAnalysis, color_range: tuple[float, float]
) -> tuple[dict | None, str]:
    import plotly.graph_objects as go

    sign = ranking.sign(analysis.mode)
    usable = summary.usable
    if len(usable) < 2:
        return None, f"needs at least 2 trials with a finite {analysis.metric} ({len(usable)} here)"
    shown = _sample(usable, MAX_PARCOORDS_LINES_PER_RULE, sign, summary.best)
    axes, constant = _axes(shown)
    dims = []
    for axis in axes:
        values = [axis.encode(t.params.get(axis.name)) for t in shown]
        dim: dict[str, Any] = {"label": axis.name + (" (log)" if axis.kind == "log" else ""), "values": values}
        if axis.kind == "category":
            dim["tickvals"] = list(range(len(axis.categories)))
            dim["ticktext"] = [c if len(c) <= 24 else c[:23] + "…" for c in axis.categories]
            dim["range"] = [-0.5, len(axis.categories) - 0.5]
        elif axis.kind == "log":
            finite = [v for v in values if v is not None]
            ticks = _log_ticks(min(finite), max(finite))
            dim["tickvals"], dim["ticktext"] = ticks, [f"{10**t:.3g}" for t in ticks]
        dims.append(dim)
    dims.append({"label": analysis.metric, "values": [t.score() for t in shown], "range": list(color_range)})
    fig = go.Figure(
        go.Parcoords(
            line={
                "color": [t.score() for t in shown],
                "colorscale": "Viridis",
                "reversescale": analysis.mode == "min",
                "cmin": color_range[0],
                "cmax": color_range[1],
                "showscale": True,
                "colorbar": {"title": {"text": analysis.metric}},
            },
            dimensions=dims,
            labelangle=-20,
            labelside="top",
        )
    )
    fig.update_layout(
        height=420,
        margin={"l": 60, "r": 60, "t": 90, "b": 40},
        title={
            "text": f"{summary.rule}: {len(shown)} trials" + (f" of {len(usable)}" if len(shown) < len(usable) else "")
        },
    )
    note = ""
    if constant:
        note = "constant here: " + ", ".join(f"{c}={_param_label(shown[0].params.get(c))}" for c in constant)
    if not axes:
        note = (note + "; " if note else "") + "no searched parameter varies: only the metric axis is drawn"
    return fig.to_plotly_json(), note


def _log_ticks(low: float, high: float) -> list[float]:
    first, last = math.floor(low), math.ceil(high)
    if last - first >= 2:
        return [float(t) for t in range(first, last + 1) if low - 1e-9 <= t <= high + 1e-9] or [low, high]
    return [low + (high - low) * i / 4 for i in range(5)]


def _importance_figure(summary: RuleSummary) -> dict | None:
    import plotly.graph_objects as go

    if not summary.importance:
        return None
    items = sorted(summary.importance.items(), key=lambda kv: kv[1])
    fig = go.Figure(
        go.Bar(
            x=[v for _, v in items],
            y=[k for k, _ in items],
            orientation="h",
            marker={"color": "#4c78a8"},
            text=[f"{v:.2f}" for _, v in items],
            textposition="auto",
        )
    )
    fig.update_layout(
        height=max(160, 40 + 32 * len(items)),
        margin={"l": 160, "r": 20, "t": 40, "b": 30},
        title={"text": summary.rule},
        xaxis={"range": [0, 1], "title": {"text": "importance (sums to 1)"}},
    )
    return fig.to_plotly_json()


def _downsample(points: list[tuple[int, float | None]]) -> list[tuple[int, float | None]]:
    if len(points) <= MAX_POINTS_PER_CURVE:
        return points
    step = len(points) / (MAX_POINTS_PER_CURVE - 1)
    kept = [points[int(i * step)] for i in range(MAX_POINTS_PER_CURVE - 1)]
    return [*kept, points[-1]]


def _curves_figure(analysis: SweepAnalysis) -> tuple[dict | None, list[str]]:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rules = [r for r in analysis.rules.values() if r.trials]
    if not rules:
        return None, []
    notes: list[str] = []
    cols = min(2, len(rules))
    rows = math.ceil(len(rules) / cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[r.rule for r in rules],
        horizontal_spacing=0.08,
        vertical_spacing=min(0.12, 0.3 / rows),
    )
    sign = ranking.sign(analysis.mode)
    legend_shown: set[str] = set()
    for i, summary in enumerate(rules):
        row, col = i // cols + 1, i % cols + 1
        drawable = [t for t in summary.trials if any(finite(v) is not None for v in t.curve.values())]
        no_points = [t for t in summary.trials if t not in drawable]
        if no_points:
            notes.append(
                f"{summary.rule}: {len(no_points)} trial(s) with no finite point to draw: "
                + "; ".join(f"{t.trial_id} ({t.status}{': ' + t.reason if t.reason else ''})" for t in no_points[:5])
                + (" …" if len(no_points) > 5 else "")
            )
        shown = drawable
        if len(drawable) > MAX_CURVES_PER_RULE:
            shown = _sample(drawable, MAX_CURVES_PER_RULE, sign, summary.best)
            notes.append(
                f"{summary.rule}: {len(shown)} of {len(drawable)} curves drawn (an even sample by value, the best kept)"
            )
        ordered = [t for t in shown if t is not summary.best] + ([summary.best] if summary.best in shown else [])
        for t in ordered:
            points = _downsample(sorted((int(e), finite(v)) for e, v in t.curve.items()))
            style = STATUS_STYLE.get(t.status, STATUS_STYLE[TrialStatus.FINISHED.value])
            best = t is summary.best
            label = "best" if best else t.status
            hover = (
                f"<b>{html.escape(t.rule)} {html.escape(t.trial_id)}</b> ({html.escape(t.status)})"
                f"<br>epoch %{{x}}: %{{y:.4g}}"
                + (f"<br>{html.escape(t.reason)}" if t.reason else "")
                + (f"<br>{_hover_params(t.params)}" if t.params else "")
                + "<extra></extra>"
            )
            fig.add_trace(
                go.Scatter(
                    x=[p[0] for p in points],
                    y=[p[1] for p in points],
                    mode="lines",
                    line={
                        "color": BEST_COLOR if best else style["color"],
                        "dash": "solid" if best else style["dash"],
                        "width": 4 if best else 1.3,
                    },
                    opacity=1.0 if best else 0.75,
                    name=label,
                    legendgroup=label,
                    showlegend=label not in legend_shown,
                    hovertemplate=hover,
                ),
                row=row,
                col=col,
            )
            legend_shown.add(label)
            last = next(((e, v) for e, v in reversed(points) if v is not None), None)
            if last is not None and (best or t.status in ENDS_MARKED):
                fig.add_trace(
                    go.Scatter(
                        x=[last[0]],
                        y=[last[1]],
                        mode="markers+text" if best else "markers",
                        marker={
                            "symbol": "star" if best else style["symbol"],
                            "size": 16 if best else 9,
                            "color": BEST_COLOR if best else style["color"],
                            "line": {"width": 1.5, "color": style["color"] if not best else "#7a5500"},
                        },
                        text=[f"best {t.trial_id}"] if best else None,
                        textposition="top left",
                        showlegend=False,
                        hovertemplate=hover,
                    ),
                    row=row,
                    col=col,
                )
        fig.update_xaxes(title_text="epoch", row=row, col=col)
        fig.update_yaxes(title_text=analysis.metric, row=row, col=col)
    fig.update_layout(
        height=360 * rows + 60, margin={"l": 60, "r": 20, "t": 60, "b": 40}, legend={"title": {"text": "trial status"}}
    )
    return fig.to_plotly_json(), notes
