"""The sweep page into MLflow: `log_report_artifact` puts the file at the parent run's artifact root (MLflow
imported by the caller, who passes its client)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sweep_service.report.page import REPORT_FILE

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient


def log_report_artifact(client: MlflowClient, run_id: str, path: str | Path) -> str:
    """Log the report at the run's artifact root (replacing an earlier version); returns its artifact path.

    The file must be named `sweep_report.html` (MLflow shows it under that name, and links point there).
    """
    path = Path(path)
    if path.name != REPORT_FILE:
        raise ValueError(f"the report must be named {REPORT_FILE}, not {path.name}")
    client.log_artifact(run_id, str(path))
    return REPORT_FILE
