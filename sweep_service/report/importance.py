"""fANOVA importance of a rule's searched parameters for the sweep's metric (Optuna's
FanovaImportanceEvaluator, imported when first used), bounded in cost by a sample of the trials."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sweep_service import ranking
from sweep_service.report.axes import _axes, _param_label, _sample
from sweep_service.report.model import ReportTrial

# Caps that bound the time to compute it, whatever the sweep's size.
MAX_IMPORTANCE_TRIALS = 200  # fANOVA's cost grows faster than linearly: 200 trials ≈ 1 s on a small CPU
IMPORTANCE_TREES = 32
IMPORTANCE_SEED = 0
MIN_IMPORTANCE_TRIALS = 3


def _importance(usable: Sequence[ReportTrial], metric: str, mode: str) -> tuple[dict[str, float] | None, str]:
    """fANOVA importance (Optuna's FanovaImportanceEvaluator) of the varying searched parameters."""
    if len(usable) < MIN_IMPORTANCE_TRIALS:
        return (
            None,
            f"needs at least {MIN_IMPORTANCE_TRIALS} trials with a finite {metric}; this rule has {len(usable)}",
        )
    sample = _sample(usable, MAX_IMPORTANCE_TRIALS, ranking.sign(mode), None)
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
