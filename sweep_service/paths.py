"""Where rfsweep keeps its state: one folder, `$RFSWEEP_HOME`, else `./.rfsweep/`, laid out as `StateLayout` says.

Every layer (the runner, the API's settings and dispatcher, the CLI) asks this module for a path instead of
joining names of its own. Paths are absolute and resolved when asked for; nothing here creates a folder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

HOME_ENV_VAR = "RFSWEEP_HOME"
ARTIFACTS_FOLDER = "mlartifacts"  # beside a SQLite MLflow store: its experiments' artifacts
LOCAL_MLFLOW_UI_PORT = 5000  # `rfsweep ui` serves the local store here (and links point here by default)
LOCAL_MLFLOW_UI = f"http://127.0.0.1:{LOCAL_MLFLOW_UI_PORT}"


def home() -> Path:
    """The state folder: `$RFSWEEP_HOME`, else `.rfsweep` in the working directory."""
    return Path(os.environ.get(HOME_ENV_VAR) or ".rfsweep").expanduser().resolve()


@dataclass(frozen=True)
class StateLayout:
    """The files and folders of one state folder."""

    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike[str] | None = None) -> StateLayout:
        """The layout of `root`, else of `home()`."""
        return cls(Path(root).expanduser().resolve() if root else home())

    @property
    def mlflow_db(self) -> Path:
        """MLflow's SQLite store (its artifacts in `ARTIFACTS_FOLDER` beside it)."""
        return self.root / "mlflow.db"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.mlflow_db}"

    @property
    def ray_results(self) -> Path:
        """Tune's storage: one folder per sweep id."""
        return self.root / "ray_results"

    @property
    def api_db(self) -> Path:
        """The API's sweep store (SQLite)."""
        return self.root / "api.db"

    @property
    def api_database_url(self) -> str:
        return f"sqlite:///{self.api_db}"

    @property
    def logs(self) -> Path:
        """Logs of the processes the API and `rfsweep quickstart` start (Ray head, drivers, servers)."""
        return self.root / "logs"

    @property
    def ray_head_file(self) -> Path:
        """Address and pid of the local Ray head the API started."""
        return self.root / "ray_head.json"

    @property
    def ray_auth_token(self) -> Path:
        """The local Ray head's token (mode 0600)."""
        return self.root / "ray_auth_token"


def artifacts_beside(sqlite_db: Path) -> Path:
    """Where the experiments of a SQLite MLflow store keep their artifacts (not ./mlruns)."""
    return sqlite_db.parent / ARTIFACTS_FOLDER
