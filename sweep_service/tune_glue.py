"""Ray Tune plumbing: a searcher and a scheduler per learning rule inside one Tune experiment, the
callback that feeds the sweep's monitor, and the stopper that cancels a sweep.

Tune pickles the callbacks, the stopper and the scheduler into the experiment folder and restores those
pickles on `Tuner.restore`, so these objects hold only the sweep id and find the live monitor of this
process in a registry (`register_monitor`) — a restored sweep gets the new process's monitor, not a stale
copy. That is also how ASHA's decision (rung, cutoff) reaches the monitor: Tune gives callbacks no reason
for a stop.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any, Protocol

from ray.tune import Callback, Stopper
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from sweep_service.space import RuleSpace


class SweepEvents(Protocol):
    """What the glue tells the sweep's monitor (`sweep_service.monitor.SweepMonitor`)."""

    cancel_requested: bool

    def step(self, trials: list[Any], force: bool = False) -> None: ...
    def trial_started(self, trial: Any, tune_trials: list[Any] | None = None) -> None: ...
    def trial_result(self, trial: Any, result: dict[str, Any]) -> None: ...
    def trial_completed(self, trial: Any) -> None: ...
    def trial_recovering(self, trial: Any, error: str) -> None: ...
    def trial_errored(self, trial: Any, error: str) -> None: ...
    def note_early_stop(self, trial_id: str, rung: float | None, cutoff: float | None, value: Any) -> None: ...


_LIVE: dict[str, SweepEvents] = {}


def error_text(trial: Any) -> str:
    """The last line of a Tune trial's error (its exception, else its error file), at most 1000 characters."""
    try:
        error = trial.get_error()
        if error is not None:
            text = str(error)
            return text.strip().splitlines()[-1][:1000] if text.strip() else type(error).__name__
    except Exception:
        pass
    path = getattr(trial, "error_file", None)
    if path and os.path.exists(path):
        lines = Path(path).read_text(errors="replace").strip().splitlines()
        return (lines[-1] if lines else "error")[:1000]
    return "error"


def register_monitor(sweep_id: str, monitor: SweepEvents) -> None:
    _LIVE[sweep_id] = monitor


def unregister_monitor(sweep_id: str) -> None:
    _LIVE.pop(sweep_id, None)


def live_monitor(sweep_id: str) -> SweepEvents | None:
    return _LIVE.get(sweep_id)


# ---- search -------------------------------------------------------------------------------------


def _rule_searcher(
    space: RuleSpace,
    method: str,
    metric: str,
    mode: str,
    num_samples: int,
    seed: int | None,
    initial_points: int | None,
) -> Searcher | None:
    from ray.tune.search.hyperopt import HyperOptSearch

    if not space.domains:
        return None  # nothing to search: every trial of this rule has the same config
    if method == "random":
        startup = num_samples + len(space.points) + 1  # TPE never leaves its random start-up phase
    else:
        startup = initial_points or max(1, min(20, num_samples // 2))
    return HyperOptSearch(
        space=dict(space.domains),
        metric=metric,
        mode=mode,
        points_to_evaluate=[dict(p) for p in space.points] or None,
        n_initial_points=startup,
        random_state_seed=seed,
    )


class PerRuleSearcher(Searcher):
    """One seeded HyperOpt search per rule, `num_samples` trials each, suggestions taken in turn."""

    def __init__(
        self,
        spaces: dict[str, RuleSpace],
        method: str,
        metric: str,
        mode: str,
        num_samples: int,
        seed: int | None,
        initial_points: int | None = None,
    ):
        super().__init__(metric=metric, mode=mode)
        self._rules = list(spaces)
        self._by_rule = {
            rule: _rule_searcher(space, method, metric, mode, num_samples, seed, initial_points)
            for rule, space in spaces.items()
        }
        self._quota = {rule: num_samples for rule in spaces}
        self._suggested = {rule: 0 for rule in spaces}
        self._trial_rule: dict[str, str] = {}

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict[str, Any], **spec: Any) -> bool:
        return True  # configured at construction; Tune's param_space is empty

    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:  # type: ignore[override]  # FINISHED is a str
        for rule in sorted(self._rules, key=lambda r: (self._suggested[r], self._rules.index(r))):
            if self._suggested[rule] >= self._quota[rule]:
                continue
            searcher = self._by_rule[rule]
            config = searcher.suggest(trial_id) if searcher is not None else {}
            if config is None:
                continue
            self._suggested[rule] += 1
            self._trial_rule[trial_id] = rule
            return {"algorithm": rule, **config}
        if all(self._suggested[r] >= self._quota[r] for r in self._rules):
            return Searcher.FINISHED
        return None

    def _searcher_of(self, trial_id: str) -> Searcher | None:
        rule = self._trial_rule.get(trial_id)
        return self._by_rule.get(rule) if rule else None

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        searcher = self._searcher_of(trial_id)
        if searcher is not None:
            searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False) -> None:
        searcher = self._searcher_of(trial_id)
        if searcher is not None:
            searcher.on_trial_complete(trial_id, result=result, error=error)

    def save(self, checkpoint_path: str) -> None:
        import cloudpickle

        with open(checkpoint_path, "wb") as fh:
            cloudpickle.dump(self.__dict__, fh)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as fh:
            self.__dict__.update(pickle.load(fh))


# ---- scheduling ---------------------------------------------------------------------------------


class PerRuleScheduler(FIFOScheduler):
    """ASHA per rule (rules are not compared with each other), epochs as time; notes early stops."""

    def __init__(
        self,
        sweep_id: str,
        rules: list[str],
        metric: str,
        mode: str,
        max_t: int,
        grace_period: int,
        reduction_factor: float,
    ):
        super().__init__()
        self._sweep_id = sweep_id
        self._max_t = max_t
        self._rule_metric, self._mode = metric, mode
        self._by_rule = {
            rule: ASHAScheduler(
                time_attr="epoch",
                metric=metric,
                mode=mode,
                max_t=max_t,
                grace_period=grace_period,
                reduction_factor=reduction_factor,
            )
            for rule in rules
        }

    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True

    def _asha(self, trial: Any) -> ASHAScheduler | None:
        return self._by_rule.get(trial.config.get("algorithm"))

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        asha = self._asha(trial)
        if asha is not None:
            asha.on_trial_add(tune_controller, trial)

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        asha = self._asha(trial)
        if asha is None or "epoch" not in result:
            return TrialScheduler.CONTINUE
        if trial.trial_id not in asha._trial_info:  # restored trials: ASHA's rungs are not checkpointed
            asha.on_trial_add(tune_controller, trial)
        rung, cutoff = _pending_rung(asha, trial.trial_id, result["epoch"])
        action = asha.on_trial_result(tune_controller, trial, result)
        if action == TrialScheduler.STOP and result["epoch"] < self._max_t:
            monitor = live_monitor(self._sweep_id)
            if monitor is not None:
                sign = 1.0 if self._mode == "max" else -1.0
                monitor.note_early_stop(
                    trial.trial_id,
                    rung,
                    None if cutoff is None else sign * float(cutoff),
                    result.get(self._rule_metric),
                )
        return action

    def on_trial_complete(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> None:
        asha = self._asha(trial)
        if asha is not None and trial.trial_id in asha._trial_info:
            asha.on_trial_complete(tune_controller, trial, result)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        asha = self._asha(trial)
        if asha is not None and trial.trial_id in asha._trial_info:
            asha.on_trial_remove(tune_controller, trial)

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self.on_trial_remove(tune_controller, trial)

    def debug_string(self) -> str:
        return "; ".join(f"{rule}: {asha.debug_string()}" for rule, asha in self._by_rule.items())


def _pending_rung(asha: ASHAScheduler, trial_id: str, epoch: float) -> tuple[float | None, float | None]:
    """The rung this result is judged at and the cutoff it must reach (in ASHA's sign convention)."""
    bracket = asha._trial_info.get(trial_id)
    if bracket is None:
        return None, None
    for milestone, recorded in bracket._rungs:
        if epoch < milestone or trial_id in recorded:
            continue
        return milestone, bracket.cutoff(recorded)
    return None, None


class FifoPerRuleScheduler(FIFOScheduler):
    def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
        return True


# ---- callbacks ----------------------------------------------------------------------------------


class CancelStopper(Stopper):
    """Stops every trial once the sweep's `should_stop` said so, and each trial at its `max_t` report.

    Stopping at the last report matters for speed: a function trainable that returns instead makes Ray
    wait a second for an error that never comes (`_ERROR_FETCH_TIMEOUT`) before the trial can end.
    """

    def __init__(self, sweep_id: str, max_t: int | None = None):
        self._sweep_id = sweep_id
        self._max_t = max_t

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return self._max_t is not None and int(result.get("epoch") or 0) >= self._max_t

    def stop_all(self) -> bool:
        monitor = live_monitor(self._sweep_id)
        return bool(monitor and monitor.cancel_requested)


class MonitorCallback(Callback):
    """Forwards Tune's trial events to the sweep's monitor (MLflow, progress, cancellation)."""

    def __init__(self, sweep_id: str):
        self._sweep_id = sweep_id

    def _monitor(self) -> SweepEvents | None:
        return live_monitor(self._sweep_id)

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        monitor = self._monitor()
        if monitor is not None:
            monitor.step(trials)

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        monitor = self._monitor()
        if monitor is not None:
            monitor.trial_started(trial, trials)

    def on_trial_restore(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        monitor = self._monitor()
        if monitor is not None:
            monitor.trial_started(trial, trials)

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        monitor = self._monitor()
        if monitor is not None:
            monitor.trial_result(trial, result)

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        monitor = self._monitor()
        if monitor is not None:
            monitor.trial_completed(trial)

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        monitor = self._monitor()
        if monitor is not None:
            monitor.trial_recovering(trial, error_text(trial))

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        monitor = self._monitor()
        if monitor is not None:
            monitor.trial_errored(trial, error_text(trial))

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        monitor = self._monitor()
        if monitor is not None:
            monitor.step(trials, force=True)
