"""sweep_service: declarative sweep specs run on Ray Tune (HyperOpt + ASHA) and tracked in MLflow.

Modules: `spec` (the pydantic spec model), `budget` (trials, rungs, epochs from a spec), `space` (spec → Tune
search spaces and back), `runner` (`run_sweep`), `tracking` (MLflow runs keyed by tags, `log_single_run`),
`status` (the trial status vocabulary), `paths` (state folder defaults), `faults` (crash injection).
Heavy imports (ray, mlflow) happen inside the modules that need them, not here.
"""
