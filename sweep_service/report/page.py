"""The sweep page as HTML: its sections (header, best per rule, parallel coordinates, importance, curves, every
trial, what the caps left out), plotly's JavaScript inlined and the figures drawn by one script at the end;
`build_report_html` (the string) and `write_sweep_report` (the file, renamed into place)."""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sweep_service import mlflow_names as names
from sweep_service import mlflow_ui, ranking
from sweep_service.best import TIE_BREAK
from sweep_service.numbers import json_safe
from sweep_service.report.analysis import analyse
from sweep_service.report.axes import _param_label
from sweep_service.report.figures import _curves_figure, _importance_figure, _parcoords_figure
from sweep_service.report.model import ReportTrial, SweepAnalysis, SweepInfo

REPORT_FILE = names.REPORT_ARTIFACT
# A cap that bounds the file's size and the time to build it, whatever the sweep's size.
MAX_TABLE_ROWS = 1000


def _json_for_script(obj: Any) -> str:
    """JSON safe inside <script>: no NaN/inf (JSON has none; they become null), and no '<', '>' or '&'
    that could close the script element whatever a trial id or parameter name holds."""
    text = json.dumps(json_safe(obj), allow_nan=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


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
    sign = ranking.sign(analysis.mode)
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
