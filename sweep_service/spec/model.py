"""The sweep spec's structure: one pydantic model for the CLI, the runner and the API (its JSON Schema is
generated from it), and the views the runner reads (each rule's base config and parameters).

What needs rf_core's knowledge (which fields exist, which rule reads which, value ranges) is checked by
`sweep_service.spec.checks`; `sweep_service.spec.parse_spec` runs both.

Distribution semantics are Ray Tune's:
- `uniform` / `loguniform`: a real number in [low, high] (log-scaled for loguniform; low > 0).
- `quniform` / `qloguniform`: as above, rounded to a multiple of `q`; low and high must be multiples of q.
- `randint`: an integer in [low, high) — high is *exclusive*; with `q`, a multiple of q in [low, high]
  (Tune's `qrandint`, whose high is inclusive).
- `choice`: one of `values`, which may be scalars, lists (e.g. `hidden` widths) or mappings of
  training-config fields chosen together (a parameter whose name is not a field, e.g.
  `schedule: {distribution: choice, values: [{lr: 0.1, batch_size: 32}, {lr: 0.01, batch_size: 128}]}`).
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter

from rf_core import METRIC_NAMES, available_rules, rule_fields
from sweep_service.spec.fields import ACTIVATIONS, DATASETS, SECTION_FIELDS, field_names

DISTRIBUTIONS = ("uniform", "loguniform", "quniform", "qloguniform", "randint", "choice")
MAX_CHOICES = 1000  # values of one choice (each is checked against rf_core: this bounds the time it takes)

# The paper's search domain (appendix A.1): what a spec searches when it gives no `parameters`.
PAPER_PARAMETERS: dict[str, Any] = {
    "lr": {"distribution": "loguniform", "low": 1e-4, "high": 1e-2},
    "feedback_lr": {"distribution": "loguniform", "low": 1e-6, "high": 1e-3},
    "batch_size": 32,
}

DIST_TAG, CONST_TAG = "§distribution", "§constant"  # pydantic union tags (not in error locations)
SCHEDULER_TYPES = ("asha", "fifo")  # the scheduler union's tags, its `type`


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Distribution(_Strict):
    """A searched parameter; arguments follow Ray Tune (randint's high is exclusive)."""

    distribution: Literal[DISTRIBUTIONS]  # type: ignore[valid-type]
    low: float | None = None
    high: float | None = None
    q: float | None = None
    values: list[Any] | None = Field(default=None, max_length=MAX_CHOICES, description="the options of a choice")


def _parameter_kind(value: Any) -> str:
    # dicts when validating, Distribution instances when serialising
    return DIST_TAG if isinstance(value, (dict, Distribution)) else CONST_TAG


Constant = Annotated[
    int | float | bool | str | list[Any] | None,
    Field(description="a fixed value for every trial"),
]
ParameterSpec = Annotated[
    Annotated[Distribution, Tag(DIST_TAG)] | Annotated[Constant, Tag(CONST_TAG)],
    Discriminator(_parameter_kind),
]


class DatasetSpec(_Strict):
    name: Literal[DATASETS] = "digits"  # type: ignore[valid-type]
    data_dir: str | None = None
    train_subset: int | None = Field(default=None, ge=1, description="train on the first N examples only")
    val_fraction: float | None = Field(default=None, ge=0, lt=1)


class ModelSpec(_Strict):
    hidden: list[Annotated[int, Field(ge=1)]] | None = Field(default=None, description="hidden widths")
    activation: Literal[ACTIVATIONS] | None = None  # type: ignore[valid-type]
    bias: bool | None = None


class SearchSpec(_Strict):
    method: Literal["hyperopt", "random"] = "hyperopt"
    metric: Literal[METRIC_NAMES] = "val_accuracy"  # type: ignore[valid-type]
    mode: Literal["max", "min"] | None = Field(default=None, description="default: max for accuracies, min for losses")
    num_samples: int = Field(default=20, ge=1, description="trials per algorithm")
    max_concurrent_trials: int | None = Field(default=None, ge=1)
    seed: int | None = 0
    initial_points: int | None = Field(
        default=None, ge=1, description="HyperOpt's random start; default: half of num_samples, at most 20"
    )
    points_to_evaluate: list[dict[str, Any]] = Field(
        default_factory=list, description="configurations tried first; may name `algorithm` to target one rule"
    )

    @property
    def resolved_mode(self) -> str:
        return self.mode or ("min" if self.metric.endswith("loss") else "max")


class AshaSchedulerSpec(_Strict):
    type: Literal["asha"] = "asha"
    max_t: int = Field(default=100, ge=1, description="most epochs a trial may train")
    grace_period: int = Field(default=1, ge=1)
    reduction_factor: float = Field(default=4, gt=1)


class FifoSchedulerSpec(_Strict):
    type: Literal["fifo"]
    max_t: int = Field(default=100, ge=1, description="epochs every trial trains")


def _scheduler_kind(value: Any) -> str:
    """`type` picks the scheduler; left out, it is ASHA (the paper's), so `{max_t: 10}` alone is valid."""
    if isinstance(value, dict):
        return value.get("type", "asha")
    return getattr(value, "type", "asha")


class ResourcesSpec(_Strict):
    cpu: float = Field(default=1, gt=0)
    gpu: float = Field(default=0, ge=0, description="fractional values share one GPU between trials")


class FailureSpec(_Strict):
    max_failures: int = Field(default=2, ge=0, description="retries of a crashed trial (from its checkpoint)")


class TrackingSpec(_Strict):
    uri: str | None = Field(default=None, description="MLflow tracking URI; else MLFLOW_TRACKING_URI, else local")
    experiment: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="MLflow experiment; default: the sweep's name (a server puts it under its own prefix)",
    )


class SweepSpec(_Strict):
    """A declarative sweep: what to train, what to search, how to schedule, where to log."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    algorithm: (
        str
        | Annotated[
            list[str],
            Field(min_length=1, max_length=len(available_rules()), json_schema_extra={"uniqueItems": True}),
        ]
    ) = Field(default="bp", description="a rule, or a list of rules (each at most once): one search per rule")
    parameters: dict[str, ParameterSpec] | None = Field(
        default=None, description="training-config fields: constants or distributions (default: the paper's)"
    )
    algorithm_parameters: dict[str, dict[str, ParameterSpec]] = Field(
        default_factory=dict, description="per-rule overrides of `parameters`"
    )
    search: SearchSpec = Field(default_factory=SearchSpec)
    scheduler: Annotated[
        Annotated[AshaSchedulerSpec, Tag("asha")] | Annotated[FifoSchedulerSpec, Tag("fifo")],
        Discriminator(
            _scheduler_kind, custom_error_type="scheduler_type", custom_error_message="type must be 'asha' or 'fifo'"
        ),
    ] = Field(default_factory=AshaSchedulerSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    failure: FailureSpec = Field(default_factory=FailureSpec)
    checkpoint_every: int = Field(default=1, ge=1, description="epochs between checkpoints (a retry resumes there)")
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)

    # ---- derived views -----------------------------------------------------------------------

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_none=True), sort_keys=False)

    @property
    def algorithms(self) -> list[str]:
        return [self.algorithm] if isinstance(self.algorithm, str) else list(self.algorithm)

    @property
    def total_trials(self) -> int:
        """num_samples trials for each listed rule."""
        return self.search.num_samples * len(self.algorithms)

    @property
    def metric(self) -> str:
        return self.search.metric

    @property
    def mode(self) -> str:
        return self.search.resolved_mode

    @property
    def max_t(self) -> int:
        return self.scheduler.max_t

    def base_config(self, rule: str) -> dict[str, Any]:
        """The training-config values fixed by the spec's sections for `rule` (before parameters)."""
        values: dict[str, Any] = {"algorithm": rule, "dataset": self.dataset.name, "epochs": self.max_t}
        for name in SECTION_FIELDS:
            value = self.section_value(name)
            if value is not None:
                values[name] = value
        return values

    def section_value(self, name: str) -> Any:
        """The value the spec's sections give training-config field `name` (None: left to the rule)."""
        section, attribute = SECTION_FIELDS[name]
        return getattr(getattr(self, str(section)), str(attribute))

    def rule_parameters(self, rule: str) -> dict[str, Any]:
        """The parameters (constants and Distributions) that apply to `rule`, overrides included."""
        fields = rule_fields(rule)
        source = self.parameters if self.parameters is not None else _paper_parameters()
        chosen = {name: value for name, value in source.items() if applies(name, value, fields)}
        chosen.update(self.algorithm_parameters.get(rule, {}))
        return chosen


@lru_cache(maxsize=1)
def _paper_parameters() -> dict[str, Any]:
    adapter = TypeAdapter(dict[str, ParameterSpec])
    return adapter.validate_python(PAPER_PARAMETERS)


def applies(name: str, value: Any, fields: frozenset[str]) -> bool:
    """Whether a parameter is something a rule reading `fields` has (bundles: all their fields)."""
    if name in field_names():
        return name in fields
    keys = _bundle_keys(value)
    return bool(keys) and keys <= fields


def _bundle_keys(value: Any) -> set[str]:
    if not (isinstance(value, Distribution) and value.distribution == "choice" and value.values):
        return set()
    if not all(isinstance(v, dict) for v in value.values):
        return set()
    return set().union(*(set(v) for v in value.values))


def is_bundle(name: str, value: Any) -> bool:
    """A choice over mappings of fields, under a name that is not itself a field."""
    return name not in field_names() and bool(_bundle_keys(value))


def points_for_rule(spec: SweepSpec, rule: str) -> list[dict[str, Any]]:
    """The `points_to_evaluate` that go to `rule`, limited to its searched parameters."""
    searched = {n for n, v in spec.rule_parameters(rule).items() if isinstance(v, Distribution)}
    out = []
    for point in spec.search.points_to_evaluate:
        target = point.get("algorithm")
        if target is not None and target != rule:
            continue
        out.append({k: v for k, v in point.items() if k in searched})
    return out


def same_value(a: Any, b: Any) -> bool:
    """Equal as the spec means it: as JSON (a list and a tuple of the same numbers are the same choice, 1 and
    1.0 the same number)."""
    return a == b or canonical(a) == canonical(b)


def canonical(value: Any) -> str:
    """A value's JSON text, keys sorted and whole floats written as integers: equal values, equal texts."""
    return json.dumps(_whole_floats_as_ints(value), sort_keys=True, default=str)


def _whole_floats_as_ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_floats_as_ints(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_whole_floats_as_ints(v) for v in value]
    return value
