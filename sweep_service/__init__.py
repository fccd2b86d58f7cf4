"""sweep_service: declarative sweep specs run on Ray Tune (HyperOpt + ASHA) and tracked in MLflow.

`spec` (the pydantic spec model and its checks), `budget` (trials, rungs, epochs from a spec), `space` (spec →
Tune search spaces and back), `runner` (`run_sweep`), `monitor` (the driver's trial table), `trial_runs` (a
sweep's MLflow runs), `tune_glue` (searcher, scheduler, callback, stopper), `trainable` (the trial in a Ray
worker), `tracking` (MLflow plumbing, `log_single_run`); the names every layer shares: `status`,
`mlflow_names`, `paths`, `problems`. ARCHITECTURE.md has one line per module.
Heavy imports (ray, mlflow) happen inside the modules that need them, not here.
"""
