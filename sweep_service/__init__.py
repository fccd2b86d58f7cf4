"""sweep_service: declarative sweep specs run on Ray Tune (HyperOpt + ASHA) and tracked in MLflow.

`spec` (the pydantic spec model and its checks), `budget` (trials, rungs, epochs from a spec), `space` (spec →
Tune search spaces and back), `runner` (`run_sweep`), `progress` (what a caller follows a sweep by), `monitor`
(the driver's trial table), `best` (the best trials), `trial_runs`, `parent_run` and `best_runs` (a sweep's
MLflow runs), `run_writer` (their writer thread), `tune_glue` (searcher, scheduler, callback, stopper),
`trainable` (the trial in a Ray worker) and `epoch_report` (what it reports), `tracking` (MLflow plumbing,
`log_single_run`); the records and names every layer shares: `records`, `status`, `mlflow_names`, `ranking`,
`numbers`, `paths`, `problems`. ARCHITECTURE.md has one line per module.
Heavy imports (ray, mlflow) happen inside the modules that need them, not here.
"""
