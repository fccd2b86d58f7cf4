"""Server settings, read from the environment and `.env` (pydantic-settings).

Names follow what compose and operators already use: `DATABASE_URL`, `RAY_ADDRESS`,
`MLFLOW_TRACKING_URI` without prefix; everything specific to rfsweep starts with `RFSWEEP_`.
"""

from __future__ import annotations

import dataclasses
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from sweep_service.limits import CostLimits
from sweep_service.paths import LOCAL_MLFLOW_UI, StateLayout

_LIMITS = CostLimits()  # the defaults


class Settings(BaseSettings):
    """Everything the API server, its dispatcher and its drivers read."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True)

    database_url: str | None = Field(
        None,
        validation_alias=AliasChoices("DATABASE_URL", "RFSWEEP_DATABASE_URL"),
        description="SQLAlchemy URL of the sweep store; default sqlite:///<state>/api.db.",
    )
    ray_address: str | None = Field(
        None,
        validation_alias=AliasChoices("RAY_ADDRESS"),
        description="Ray cluster the drivers join; unset: the API starts one local Ray head.",
    )
    mlflow_tracking_uri: str | None = Field(
        None,
        validation_alias=AliasChoices("MLFLOW_TRACKING_URI"),
        description="MLflow tracking store; default sqlite:///<state>/mlflow.db.",
    )
    mlflow_ui_url: str | None = Field(
        None,
        validation_alias=AliasChoices("RFSWEEP_MLFLOW_UI_URL"),
        description="Public base URL of the MLflow UI used in links; default the tracking URI when it is http(s), "
        "else the address `rfsweep ui` serves a local store on (http://127.0.0.1:5000).",
    )
    storage_path: str | None = Field(
        None,
        validation_alias=AliasChoices("RFSWEEP_STORAGE_PATH"),
        description="Ray Tune storage path (shared folder or S3 URI); default <state>/ray_results.",
    )
    api_token: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("RFSWEEP_API_TOKEN"),
        description="Bearer token required on mutating endpoints (and reads with protect_reads).",
    )
    protect_reads: bool = Field(False, validation_alias=AliasChoices("RFSWEEP_PROTECT_READS"))
    max_running_sweeps: int = Field(
        1,
        ge=0,
        validation_alias=AliasChoices("RFSWEEP_MAX_RUNNING_SWEEPS"),
        description="Sweeps that run at once; 0 = queue only (nothing executes).",
    )
    max_body_bytes: int = Field(256 * 1024, ge=1024, validation_alias=AliasChoices("RFSWEEP_MAX_BODY_BYTES"))
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=AliasChoices("RFSWEEP_ALLOWED_ORIGINS"),
        description="Browser origins (scheme://host[:port], comma-separated) allowed to write without a token; "
        "by default only a page served by this server on a loopback name.",
    )
    experiment_prefix: str = Field(
        "api/",
        max_length=100,
        validation_alias=AliasChoices("RFSWEEP_EXPERIMENT_PREFIX"),
        description="MLflow experiments of the API's sweeps are named PREFIX + (tracking.experiment or name).",
    )
    adopt_foreign_experiments: bool = Field(
        False,
        validation_alias=AliasChoices("RFSWEEP_ADOPT_FOREIGN_EXPERIMENTS"),
        description="Let a sweep write into an existing MLflow experiment rfsweep did not create.",
    )
    # Per-request spec limits, so one request cannot exhaust the cluster (defaults: sweep_service.spec.CostLimits).
    limit_num_samples: int = Field(
        _LIMITS.num_samples, ge=1, validation_alias=AliasChoices("RFSWEEP_LIMIT_NUM_SAMPLES")
    )
    limit_total_trials: int = Field(
        _LIMITS.total_trials, ge=1, validation_alias=AliasChoices("RFSWEEP_LIMIT_TOTAL_TRIALS")
    )
    limit_max_t: int = Field(_LIMITS.max_t, ge=1, validation_alias=AliasChoices("RFSWEEP_LIMIT_MAX_T"))
    limit_concurrency: int = Field(
        _LIMITS.concurrency,
        ge=1,
        validation_alias=AliasChoices("RFSWEEP_LIMIT_CONCURRENCY"),
        description="Largest search.max_concurrent_trials.",
    )
    limit_cpu_per_trial: float = Field(
        _LIMITS.cpu_per_trial, gt=0, validation_alias=AliasChoices("RFSWEEP_LIMIT_CPU_PER_TRIAL")
    )
    limit_gpu_per_trial: float = Field(
        _LIMITS.gpu_per_trial, ge=0, validation_alias=AliasChoices("RFSWEEP_LIMIT_GPU_PER_TRIAL")
    )
    limit_width: int = Field(_LIMITS.width, ge=1, validation_alias=AliasChoices("RFSWEEP_LIMIT_WIDTH"))
    limit_depth: int = Field(_LIMITS.depth, ge=1, validation_alias=AliasChoices("RFSWEEP_LIMIT_DEPTH"))
    limit_weights: int = Field(_LIMITS.weights, ge=1, validation_alias=AliasChoices("RFSWEEP_LIMIT_WEIGHTS"))
    limit_sleep_steps: int = Field(
        _LIMITS.sleep_steps, ge=1, validation_alias=AliasChoices("RFSWEEP_LIMIT_SLEEP_STEPS")
    )
    limit_noise_batch: int = Field(
        _LIMITS.noise_batch, ge=1, validation_alias=AliasChoices("RFSWEEP_LIMIT_NOISE_BATCH")
    )
    limit_max_failures: int = Field(
        _LIMITS.max_failures, ge=0, validation_alias=AliasChoices("RFSWEEP_LIMIT_MAX_FAILURES")
    )
    # Local Ray head (only when RAY_ADDRESS is unset).
    ray_num_cpus: int | None = Field(None, validation_alias=AliasChoices("RFSWEEP_RAY_NUM_CPUS"))
    ray_num_gpus: int | None = Field(None, validation_alias=AliasChoices("RFSWEEP_RAY_NUM_GPUS"))
    dispatch_interval_s: float = Field(0.5, gt=0, validation_alias=AliasChoices("RFSWEEP_DISPATCH_INTERVAL_S"))
    driver_heartbeat_timeout_s: float = Field(
        60,
        gt=0,
        validation_alias=AliasChoices("RFSWEEP_DRIVER_HEARTBEAT_TIMEOUT_S"),
        description="A driver on another host silent this long counts as dead.",
    )
    max_driver_attempts: int = Field(3, ge=1, validation_alias=AliasChoices("RFSWEEP_MAX_DRIVER_ATTEMPTS"))
    db_pool_size: int = Field(10, ge=1, validation_alias=AliasChoices("RFSWEEP_DB_POOL_SIZE"))
    rfsweep_home: str | None = Field(
        None, validation_alias=AliasChoices("RFSWEEP_HOME")
    )  # not "home": populate_by_name would read $HOME

    @field_validator("api_token")
    @classmethod
    def _blank_token_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().strip():
            return None
        return value

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [origin.strip().rstrip("/").lower() for origin in value.split(",") if origin.strip()]
        return value

    @property
    def cost_limits(self) -> CostLimits:
        """The RFSWEEP_LIMIT_* settings as the spec's limits."""
        return CostLimits(**{f.name: getattr(self, f"limit_{f.name}") for f in dataclasses.fields(CostLimits)})

    @property
    def state(self) -> StateLayout:
        """The state folder (RFSWEEP_HOME, else ./.rfsweep) and where each file of it lies."""
        return StateLayout.at(self.rfsweep_home)

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # compose and most tools write postgresql://; SQLAlchemy needs the driver named.
            if url.startswith("postgres://"):
                url = "postgresql://" + url[len("postgres://") :]
            if url.startswith("postgresql://"):
                url = "postgresql+psycopg://" + url[len("postgresql://") :]
            return url
        return self.state.api_database_url

    @property
    def resolved_tracking_uri(self) -> str:
        if self.mlflow_tracking_uri:
            return self.mlflow_tracking_uri
        return self.state.tracking_uri

    @property
    def resolved_storage_path(self) -> str:
        if self.storage_path:
            return self.storage_path
        return str(self.state.ray_results)

    @property
    def resolved_mlflow_ui_url(self) -> str | None:
        if self.mlflow_ui_url:
            return self.mlflow_ui_url.rstrip("/")
        uri = self.resolved_tracking_uri
        if uri.startswith(("http://", "https://")):
            return uri.rstrip("/")
        return LOCAL_MLFLOW_UI  # a local store: the UI `rfsweep ui` starts on it


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
