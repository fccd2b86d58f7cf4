"""The sweep page: one self-contained interactive HTML file, `sweep_report.html`, for a sweep's parent run.

MLflow renders an HTML artifact inline on the run's artifact page, so this file is the sweep view a W&B
user expects, inside MLflow: the best trial per rule (and the rules with no usable trial, with why),
parallel coordinates over the searched parameters coloured by the sweep's metric, parameter importance
(fANOVA), learning curves per rule with stopped-early and diverged trials marked, and every trial in a
table. Plotly draws the charts; its JavaScript is inlined (no CDN, no network: the file works offline and
inside MLflow's sandboxed frame). Sizes are bounded: past the caps below, charts show a subset and say so.

Entry points:
- `write_sweep_report(trials, SweepInfo(metric=, mode=, ...), path)`: pure apart from writing the file (no
  MLflow); call it after trial results (throttled: fANOVA costs up to ~1 s per rule) and at the sweep's end.
- `log_report_artifact(client, parent_run_id, path)`: the file at the parent run's artifact root.
- `analyse(trials, info)`: the numbers the page shows (best per rule, unusable rules, importance), for tests and
  for callers that want them without HTML.

How a trial's value is read, as the runner ranks trials (`SweepMonitor.best`): its metric at its last
reported epoch; diverged and failed trials, and trials whose value is NaN/inf, have none. The best trial
of a rule is the one the caller names in `best_trial_ids` (the runner's choice is the one home); without
it, the trial with the best value, ties going to the trial listed first.
"""

from __future__ import annotations

import html
import json
import math
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep_service import mlflow_ui
from sweep_service.status import TrialStatus
from sweep_service.trials import TIE_BREAK

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

REPORT_FILE = "sweep_report.html"
# Caps that bound the file's size and the time to build it, whatever the sweep's size.
MAX_CURVES_PER_RULE = 150
MAX_POINTS_PER_CURVE = 300
MAX_PARCOORDS_LINES_PER_RULE = 1000
MAX_IMPORTANCE_TRIALS = 200  # fANOVA's cost grows faster than linearly: 200 trials ≈ 1 s on a small CPU
MAX_TABLE_ROWS = 1000
IMPORTANCE_TREES = 32
IMPORTANCE_SEED = 0
MIN_IMPORTANCE_TRIALS = 3
LOG_AXIS_RATIO = 20.0  # positive numeric values spanning more than this factor get a log axis
NO_VALUE_STATUSES = frozenset({TrialStatus.DIVERGED.value, TrialStatus.FAILED.value})


@dataclass(frozen=True, eq=False)  # compared by identity: trials are distinct records
class ReportTrial:
    """One trial as the page needs it.

    `curve` maps epoch → the sweep's metric; `value` is the trial's value as the runner ranks it (None:
    read from the curve's last epoch); `reason` says why it stopped early, diverged or failed.
    """

    trial_id: str
    rule: str
    status: str
    params: Mapping[str, Any] = field(default_factory=dict)
    config: Mapping[str, Any] = field(default_factory=dict)
    curve: Mapping[int, float] = field(default_factory=dict)
    reason: str | None = None
    mlflow_run_id: str | None = None
    run_name: str | None = None
    value: float | None = None

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any], curve: Mapping[int, float] | None = None) -> ReportTrial:
        """From a trial row as `rfsweep sweep --json` and the API give it (`TrialRecord.summary()`), with the
        per-epoch curve of the sweep's metric (`TrialRecord.curve`)."""
        return cls(
            trial_id=str(summary["trial_id"]),
            rule=str(summary.get("algorithm", "?")),
            status=str(summary.get("status", "pending")),
            params=dict(summary.get("params") or {}),
            config=dict(summary.get("config") or {}),
            curve=dict(curve or {}),
            reason=summary.get("reason"),
            mlflow_run_id=summary.get("mlflow_run_id"),
            run_name=summary.get("run_name"),
            value=summary.get("last_metric"),
        )

    @property
    def epochs(self) -> int:
        return max((int(e) for e in self.curve), default=0)

    def score(self) -> float | None:
        """The value the trial is ranked by, or None when it has none (diverged, failed, NaN, no epoch)."""
        if self.status in NO_VALUE_STATUSES:
            return None
        value = self.value
        if value is None and self.curve:
            value = self.curve[max(self.curve, key=int)]
        return _finite(value)


@dataclass(frozen=True)
class SweepInfo:
    """What the page says about the sweep besides its trials.

    `rules`: the spec's rules, so a rule with no trial yet is listed; `best_trial_ids`: rule → the trial the
    runner chose (marked best); `experiment_id` (+ `mlflow_ui_url`, the UI's address where known): links to
    each trial's run (without an address they are relative to the MLflow server's root, which works where
    the report is opened from the server); `final=False` labels the page as in progress.
    """

    metric: str
    mode: str
    name: str = ""
    sweep_id: str = ""
    rules: tuple[str, ...] = ()
    best_trial_ids: Mapping[str, str] = field(default_factory=dict)
    experiment_id: str | None = None
    mlflow_ui_url: str | None = None
    final: bool = True


@dataclass
class RuleSummary:
    rule: str
    trials: list[ReportTrial]
    best: ReportTrial | None
    usable: list[ReportTrial]  # trials with a finite value
    why_unusable: str | None  # set when `usable` is empty
    importance: dict[str, float] | None = None
    importance_note: str = ""


@dataclass
class SweepAnalysis:
    metric: str
    mode: str
    rules: dict[str, RuleSummary]
    counts: dict[str, int]
    notes: list[str] = field(default_factory=list)  # what the caps left out, said on the page


# ---- analysis ----------------------------------------------------------------------------------------


def _finite(value: Any) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _sign(mode: str) -> float:
    if mode not in ("max", "min"):
        raise ValueError(f"mode: must be 'max' or 'min', not {mode!r}")
    return 1.0 if mode == "max" else -1.0


def _why_unusable(trials: Sequence[ReportTrial], metric: str) -> str:
    if not trials:
        return "no trial ran"
    counts = Counter(t.status for t in trials)
    parts = [f"{n} {status}" for status, n in sorted(counts.items())]
    reasons = [f"{t.trial_id}: {t.reason}" for t in trials if t.reason][:5]
    text = f"no trial with a finite {metric} ({', '.join(parts)})"
    if reasons:
        text += " — " + "; ".join(reasons)
    return text


def analyse(trials: Iterable[ReportTrial], info: SweepInfo, *, importance: bool = True) -> SweepAnalysis:
    """Group trials by rule (the spec's rules first, even those with no trial), find each rule's best trial
    (or why it has none) and, per rule, fANOVA importance of the searched parameters for the sweep's metric."""
    metric, mode = info.metric, info.mode
    sign = _sign(mode)
    trials = list(trials)
    order = list(dict.fromkeys([*info.rules, *(t.rule for t in trials)]))
    by_rule: dict[str, RuleSummary] = {}
    for rule in order:
        own = [t for t in trials if t.rule == rule]
        usable = [t for t in own if t.score() is not None]
        best = None
        wanted = info.best_trial_ids.get(rule)
        if wanted is not None:
            best = next((t for t in own if t.trial_id == wanted), None)
        if best is None and usable:
            best = max(usable, key=lambda t: sign * (t.score() or 0.0))  # max() keeps the first of equals
        summary = RuleSummary(rule, own, best, usable, None if usable else _why_unusable(own, metric))
        if importance:
            summary.importance, summary.importance_note = _importance(usable, metric, mode)
        by_rule[rule] = summary
    counts = Counter(t.status for t in trials)
    return SweepAnalysis(
        metric, mode, by_rule, {s.value: counts.get(s.value, 0) for s in TrialStatus} | {"total": len(trials)}
    )


def _param_label(value: Any) -> str:
    """Lists (hidden widths), mappings and other non-numbers as one short, stable text."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_param_label(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(float(value))


@dataclass
class _Axis:
    """A searched parameter as an axis: numeric (maybe log10) or categorical (codes with labels)."""

    name: str
    kind: str  # "linear" | "log" | "category"
    categories: list[str] = field(default_factory=list)

    def encode(self, value: Any) -> float | None:
        if value is None and self.kind != "category":
            return None
        if self.kind == "linear":
            return float(value)
        if self.kind == "log":
            return math.log10(float(value))
        return float(self.categories.index(_param_label(value)))


def _axes(trials: Sequence[ReportTrial]) -> tuple[list[_Axis], list[str]]:
    """Axes for the parameters that vary across `trials`, and the names of those that do not."""
    names = sorted({k for t in trials for k in t.params})
    axes, constant = [], []
    for name in names:
        values = [t.params.get(name) for t in trials]
        labels = list(dict.fromkeys(_param_label(v) for v in values))
        if len(labels) < 2:
            constant.append(name)
            continue
        if all(_is_number(v) for v in values):
            numbers = [float(v) for v in values if v is not None]
            low, high = min(numbers), max(numbers)
            kind = "log" if low > 0 and high / low > LOG_AXIS_RATIO else "linear"
            axes.append(_Axis(name, kind))
        else:
            axes.append(_Axis(name, "category", sorted(labels, key=_natural_key)))
    return axes, constant


def _natural_key(text: str) -> tuple[int, float, str]:
    try:
        return (0, float(text), text)
    except ValueError:
        return (1, 0.0, text)


def _sample(trials: Sequence[ReportTrial], cap: int, sign: float, keep: ReportTrial | None) -> list[ReportTrial]:
    """At most `cap` trials spread evenly over the ranking by value (the best always kept)."""
    if len(trials) <= cap:
        return list(trials)
    ranked = sorted(trials, key=lambda t: (t.score() is None, -sign * (t.score() or 0.0)))
    step = len(ranked) / cap
    chosen = [ranked[int(i * step)] for i in range(cap)]
    if keep is not None and keep not in chosen:
        chosen[-1] = keep
    return chosen


def _importance(usable: Sequence[ReportTrial], metric: str, mode: str) -> tuple[dict[str, float] | None, str]:
    """fANOVA importance (Optuna's FanovaImportanceEvaluator) of the varying searched parameters."""
    if len(usable) < MIN_IMPORTANCE_TRIALS:
        return (
            None,
            f"needs at least {MIN_IMPORTANCE_TRIALS} trials with a finite {metric}; this rule has {len(usable)}",
        )
    sample = _sample(usable, MAX_IMPORTANCE_TRIALS, _sign(mode), None)
    axes, _ = _axes(sample)
    if not axes:
        return None, "no searched parameter varies across these trials"
    try:
        import optuna
        from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
        from optuna.importance import FanovaImportanceEvaluator, get_param_importances
        from optuna.trial import create_trial

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        distributions: dict[str, BaseDistribution] = {}
        for axis in axes:
            if axis.kind == "category":
                distributions[axis.name] = CategoricalDistribution(axis.categories)
            else:
                values = [float(t.params[axis.name]) for t in sample if t.params.get(axis.name) is not None]
                distributions[axis.name] = FloatDistribution(min(values), max(values), log=axis.kind == "log")
        study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
        frozen = []
        for t in sample:
            params: dict[str, Any] = {}
            dists: dict[str, BaseDistribution] = {}
            for axis in axes:
                value = t.params.get(axis.name)
                if value is None:
                    continue
                params[axis.name] = _param_label(value) if axis.kind == "category" else float(value)
                dists[axis.name] = distributions[axis.name]
            frozen.append(create_trial(params=params, distributions=dists, value=t.score()))
        study.add_trials(frozen)
        result = get_param_importances(
            study, evaluator=FanovaImportanceEvaluator(n_trees=IMPORTANCE_TREES, seed=IMPORTANCE_SEED), normalize=True
        )
    except Exception as exc:  # shown on the page: the rest of the report stands without it
        return None, f"could not be computed: {type(exc).__name__}: {exc}"
    note = (
        f"fANOVA over {len(sample)} trials with a finite {metric}"
        + (f" (an even sample of {len(usable)} by value)" if len(sample) < len(usable) else "")
        + f"; Optuna's FanovaImportanceEvaluator, {IMPORTANCE_TREES} trees, seed {IMPORTANCE_SEED}"
    )
    return {k: float(v) for k, v in result.items()}, note


# ---- figures (plotly) -----------------------------------------------------------------------------

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

    sign = _sign(analysis.mode)
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
    sign = _sign(analysis.mode)
    legend_shown: set[str] = set()
    for i, summary in enumerate(rules):
        row, col = i // cols + 1, i % cols + 1
        drawable = [t for t in summary.trials if any(_finite(v) is not None for v in t.curve.values())]
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
            points = _downsample(sorted((int(e), _finite(v)) for e, v in t.curve.items()))
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


# ---- HTML ----------------------------------------------------------------------------------------------


def _json_for_script(obj: Any) -> str:
    """JSON safe inside <script>: no NaN/inf (JSON has none; they become null), and no '<', '>' or '&'
    that could close the script element whatever a trial id or parameter name holds."""
    text = json.dumps(_nulls_for_nonfinite(obj), allow_nan=False, default=_json_default, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _nulls_for_nonfinite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _nulls_for_nonfinite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nulls_for_nonfinite(v) for v in obj]
    if hasattr(obj, "tolist"):
        return _nulls_for_nonfinite(obj.tolist())
    return obj


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4g}"


def _run_cell(t: ReportTrial, experiment_id: str | None, ui_url: str | None) -> str:
    if not t.mlflow_run_id:
        return "—"
    rid = _esc(t.mlflow_run_id)
    if experiment_id is None:
        return f"<code>{rid}</code>"
    href = _esc(mlflow_ui.run_url(ui_url, experiment_id, t.mlflow_run_id))
    name = _esc(t.run_name or "run")
    return f'<a href="{href}" target="_blank" rel="noopener">{name}</a> <code class="rid">{rid}</code>'


def _params_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{_esc(k)}={_esc(_param_label(v))}" for k, v in sorted(params.items()))


_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:16px 20px;
  color:#1f2328;font-size:14px}
h1{font-size:20px;margin:0 0 4px}
h2{font-size:16px;margin:22px 0 6px;border-bottom:1px solid #d0d7de;padding-bottom:3px}
.meta{color:#57606a} table{border-collapse:collapse;margin:6px 0}
th,td{border:1px solid #d0d7de;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f6f8fa} tr.best td{background:#fff4d6;font-weight:600} .none{color:#a40e26}
code{font-size:12px} .rid{color:#57606a} .note{color:#57606a;font-size:12px;margin:2px 0}
.status-stopped_early{color:#6e7781} .status-diverged,.status-failed{color:#a40e26} .chart{width:100%}
details{margin:4px 0} .grid{display:flex;flex-wrap:wrap;gap:12px} .grid>div{flex:1 1 420px;min-width:320px}
"""


class _Page:
    """The page's HTML parts and its plotly figures (drawn by one script at the end)."""

    def __init__(self, info: SweepInfo):
        self.info = info
        self.parts: list[str] = []
        self.figures: list[tuple[str, dict]] = []

    def add(self, html_text: str) -> None:
        self.parts.append(html_text)

    def note(self, text: str) -> None:
        self.parts.append(f'<p class="note">{_esc(text)}</p>')

    def figure(self, fig: dict) -> None:
        div = f"fig{len(self.figures)}"
        self.figures.append((div, fig))
        self.parts.append(f'<div id="{div}" class="chart"></div>')

    def run_cell(self, t: ReportTrial) -> str:
        return _run_cell(t, self.info.experiment_id, self.info.mlflow_ui_url)

    def html(self) -> str:
        import plotly.offline

        scripts = "".join(
            f"Plotly.newPlot({json.dumps(div)},{_json_for_script(fig['data'])},{_json_for_script(fig['layout'])},"
            '{"displaylogo":false,"responsive":true});'
            for div, fig in self.figures
        )
        title = f"Sweep {self.info.name or self.info.sweep_id}"
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{_esc(title)}</title>'
            f"<style>{_STYLE}</style>"
            f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script></head><body>'
            + "\n".join(self.parts)
            + f'<script type="text/javascript">{scripts}</script></body></html>\n'
        )


def _header(page: _Page, analysis: SweepAnalysis) -> None:
    info, counts = page.info, analysis.counts
    state = (
        "final"
        if info.final
        else (f"in progress (refreshed as the sweep runs; {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())})")
    )
    page.add(f"<h1>Sweep {_esc(info.name or info.sweep_id)}</h1>")
    page.add(
        f'<p class="meta">sweep id <code>{_esc(info.sweep_id)}</code> · '
        f"metric <b>{_esc(info.metric)}</b> ({_esc(info.mode)}) · "
        f"{counts['total']} trials: "
        + _esc(", ".join(f"{n} {s}" for s, n in counts.items() if s != "total" and n))
        + f" · {_esc(state)}</p>"
    )


def _best_section(page: _Page, analysis: SweepAnalysis) -> None:
    page.add("<h2>Best trial per rule</h2>")
    rows = []
    for summary in analysis.rules.values():
        b = summary.best
        if b is None:
            rows.append(
                f'<tr><td>{_esc(summary.rule)}</td><td colspan="6" class="none">no usable trial: '
                f"{_esc(summary.why_unusable)}</td></tr>"
            )
            continue
        config = json.dumps(dict(b.config), indent=1, sort_keys=True, default=str) if b.config else ""
        rows.append(
            f'<tr class="best"><td>{_esc(summary.rule)}</td><td><code>{_esc(b.trial_id)}</code></td>'
            f'<td>{_fmt(b.score())}</td><td>{b.epochs}</td><td class="status-{_esc(b.status)}">{_esc(b.status)}</td>'
            f"<td>{_params_text(b.params) or '—'}"
            + (f"<details><summary>full config</summary><pre>{_esc(config)}</pre></details>" if config else "")
            + f"</td><td>{page.run_cell(b)}</td></tr>"
        )
    page.add(
        f"<table><tr><th>rule</th><th>trial</th><th>{_esc(analysis.metric)}</th><th>epochs</th><th>status</th>"
        f"<th>searched parameters</th><th>MLflow run</th></tr>{''.join(rows)}</table>"
    )
    page.note(
        "Value = the metric at the trial's last reported epoch, as the sweep ranks trials; ties: "
        f"{'the sweep chose: ' + TIE_BREAK if page.info.best_trial_ids else 'the trial listed first'}. "
        "Inside MLflow's artifact viewer links cannot open (MLflow shows HTML in a "
        "sandboxed frame): use the run id, or open this file on its own."
    )


def _parcoords_section(page: _Page, analysis: SweepAnalysis, scores: list[float]) -> None:
    color_range = (min(scores), max(scores)) if scores else (0.0, 1.0)
    if color_range[0] == color_range[1]:
        color_range = (color_range[0] - 0.5, color_range[1] + 0.5)
    page.add("<h2>Parallel coordinates</h2>")
    page.note(
        f"One chart per rule (each rule has its own search); colour = {analysis.metric}, on one scale across "
        "rules. Drag along an axis to filter. Diverged and failed trials have no value and are not drawn "
        "(see the table below)."
    )
    for summary in analysis.rules.values():
        fig, note = _parcoords_figure(summary, analysis, color_range)
        if fig is None:
            page.add(f'<p class="note"><b>{_esc(summary.rule)}</b>: {_esc(note)}</p>')
            continue
        page.figure(fig)
        if note:
            page.note(note)


def _importance_section(page: _Page, analysis: SweepAnalysis) -> None:
    page.add("<h2>Parameter importance</h2>")
    page.note(
        f"fANOVA (functional ANOVA, Hutter et al. 2014): the share of the variance of {analysis.metric} over "
        "the searched space that each parameter explains on its own, from a random forest fitted to the "
        "trials. It says which knobs mattered in this search, not why."
    )
    page.add('<div class="grid">')
    for summary in analysis.rules.values():
        page.add("<div>")
        fig = _importance_figure(summary)
        if fig is not None:
            page.figure(fig)
        else:
            page.add(f"<p><b>{_esc(summary.rule)}</b></p>")
        page.note(summary.importance_note)
        page.add("</div>")
    page.add("</div>")


def _curves_section(page: _Page, analysis: SweepAnalysis) -> None:
    page.add("<h2>Learning curves</h2>")
    page.note(
        f"{analysis.metric} per epoch; the best trial of each rule in bold gold with a star; stopped-early "
        "trials dotted, ending in a bar; diverged trials dashed red, ending in a cross at their last finite "
        "epoch; hover a line for its trial, status, reason and parameters."
    )
    fig, notes = _curves_figure(analysis)
    if fig is not None:
        page.figure(fig)
    else:
        page.note("no trial yet")
    analysis.notes.extend(notes)


def _trials_section(page: _Page, analysis: SweepAnalysis, trials: list[ReportTrial]) -> None:
    page.add("<h2>All trials</h2>")
    sign = _sign(analysis.mode)
    ordered = sorted(trials, key=lambda t: (t.rule, t.score() is None, -sign * (t.score() or 0.0)))
    if len(ordered) > MAX_TABLE_ROWS:
        analysis.notes.append(
            f"the table lists {MAX_TABLE_ROWS} of {len(ordered)} trials (by rule, best first); "
            "trials.csv on this run lists them all"
        )
        ordered = ordered[:MAX_TABLE_ROWS]
    best = {id(s.best) for s in analysis.rules.values() if s.best is not None}
    rows = [
        f"<tr><th>rule</th><th>trial</th><th>status</th><th>{_esc(analysis.metric)}</th><th>epochs</th>"
        "<th>reason</th><th>searched parameters</th><th>MLflow run</th></tr>"
    ]
    for t in ordered:
        cls = ' class="best"' if id(t) in best else ""
        rows.append(
            f"<tr{cls}><td>{_esc(t.rule)}</td><td><code>{_esc(t.trial_id)}</code></td>"
            f'<td class="status-{_esc(t.status)}">{_esc(t.status)}</td><td>{_fmt(t.score())}</td><td>{t.epochs}</td>'
            f"<td>{_esc(t.reason or '')}</td><td>{_params_text(t.params)}</td><td>{page.run_cell(t)}</td></tr>"
        )
    page.add("<table>" + "".join(rows) + "</table>")


def build_report_html(trials: Iterable[ReportTrial], info: SweepInfo) -> str:
    """The page as one HTML string (see `write_sweep_report`)."""
    trials = list(trials)
    analysis = analyse(trials, info)
    page = _Page(info)
    _header(page, analysis)
    _best_section(page, analysis)
    _parcoords_section(page, analysis, [s for t in trials if (s := t.score()) is not None])
    _importance_section(page, analysis)
    _curves_section(page, analysis)
    _trials_section(page, analysis, trials)
    if analysis.notes:
        page.add(
            "<h2>Left out to keep this page small</h2><ul>"
            + "".join(f"<li>{_esc(n)}</li>" for n in analysis.notes)
            + "</ul>"
        )
    return page.html()


def write_sweep_report(trials: Iterable[ReportTrial], info: SweepInfo, path: str | Path) -> Path:
    """Write the sweep page to `path` (a file, or a folder that gets `sweep_report.html`); returns the file.

    Written to a temporary name and renamed, so a reader (or a concurrent upload) never sees half a file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / REPORT_FILE
    text = build_report_html(trials, info)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def log_report_artifact(client: MlflowClient, run_id: str, path: str | Path) -> str:
    """Log the report at the run's artifact root (replacing an earlier version); returns its artifact path.

    The file must be named `sweep_report.html` (MLflow shows it under that name, and links point there).
    """
    path = Path(path)
    if path.name != REPORT_FILE:
        raise ValueError(f"the report must be named {REPORT_FILE}, not {path.name}")
    client.log_artifact(run_id, str(path))
    return REPORT_FILE
