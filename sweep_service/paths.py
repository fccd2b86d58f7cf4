"""Where rfsweep keeps its state by default: `$RFSWEEP_HOME`, else `./.rfsweep/`.

Layout: `mlflow.db` (MLflow's SQLite store) with artifacts in `mlartifacts/`, Tune's storage in
`ray_results/`, the API's database in `api.db`. Paths are absolute, resolved when called, and folders
are created only by `ensure_home()` so that merely asking for a path has no side effects.
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The state folder: `$RFSWEEP_HOME`, else `.rfsweep` in the working directory."""
    return Path(os.environ.get("RFSWEEP_HOME") or ".rfsweep").expanduser().resolve()


def ensure_home() -> Path:
    path = home()
    path.mkdir(parents=True, exist_ok=True)
    return path


def mlflow_db_path() -> Path:
    return home() / "mlflow.db"


def mlflow_artifacts_dir() -> Path:
    return home() / "mlartifacts"


def default_tracking_uri() -> str:
    """The local MLflow store: a SQLite file in the state folder."""
    return f"sqlite:///{mlflow_db_path()}"


def ray_results_dir() -> Path:
    """Tune's default storage path (one sub-folder per sweep id)."""
    return home() / "ray_results"


def api_db_path() -> Path:
    return home() / "api.db"


def default_api_database_url() -> str:
    return f"sqlite:///{api_db_path()}"
