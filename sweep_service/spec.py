"""The sweep spec: one pydantic model for the CLI, the runner and the API, loadable from YAML or JSON.

Validation happens in two passes. Pydantic checks the structure (unknown fields, types); then
`_semantic_errors` checks what needs rf_core's knowledge (which training-config fields exist, which rule
reads which field, value ranges) and the distributions' arguments. Both report errors as
`{"loc": "parameters.lr.low", "msg": "must be > 0 for loguniform"}`.

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
import math
import typing
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from rf_core.config import DEFAULT_HIDDEN, TrainConfig

METRIC_NAMES = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")
DATASETS = tuple(DEFAULT_HIDDEN)
DISTRIBUTIONS = ("uniform", "loguniform", "quniform", "qloguniform", "randint", "choice")

# The paper's search domains (appendix A.1): the defaults when a spec gives no `parameters`.
PAPER_PARAMETERS: dict[str, Any] = {
    "lr": {"distribution": "loguniform", "low": 1e-4, "high": 1e-2},
    "feedback_lr": {"distribution": "loguniform", "low": 1e-6, "high": 1e-3},
    "batch_size": 32,
}

# Training-config fields a sweep sets itself; naming them as parameters is an error, with this reason.
RESERVED_FIELDS = {
    "algorithm": "set by the spec's `algorithm`",
    "epochs": "set by scheduler.max_t",
    "device": "chosen from resources.gpu (the GPU Ray assigns, else the CPU)",
    "dataset": "set by dataset.name",
    "data_dir": "set by dataset.data_dir",
}
# Training-config fields the spec's sections set; the same field in `parameters` is a conflict.
SECTION_FIELDS = {
    "hidden": "model.hidden",
    "activation": "model.activation",
    "bias": "model.bias",
    "train_subset": "dataset.train_subset",
    "val_fraction": "dataset.val_fraction",
}

_DIST_TAG, _CONST_TAG = "§distribution", "§constant"


class SpecError(ValueError):
    """An invalid spec; `.errors` lists `{"loc": "field.path", "msg": "reason"}`."""

    def __init__(self, errors: list[dict[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{e['loc']}: {e['msg']}" if e["loc"] else e["msg"] for e in errors))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Distribution(_Strict):
    """A searched parameter; arguments follow Ray Tune (randint's high is exclusive)."""

    distribution: Literal["uniform", "loguniform", "quniform", "qloguniform", "randint", "choice"]
    low: float | None = None
    high: float | None = None
    q: float | None = None
    values: list[Any] | None = Field(default=None, description="the options of a choice")


def _parameter_kind(value: Any) -> str:
    # dicts when validating, Distribution instances when serialising
    return _DIST_TAG if isinstance(value, (dict, Distribution)) else _CONST_TAG


Constant = Annotated[
    Union[int, float, bool, str, list[Any], None],
    Field(description="a fixed value for every trial"),
]
ParameterSpec = Annotated[
    Union[Annotated[Distribution, Tag(_DIST_TAG)], Annotated[Constant, Tag(_CONST_TAG)]],
    Discriminator(_parameter_kind),
]


class DatasetSpec(_Strict):
    name: Literal["digits", "synthetic", "mnist", "fashion_mnist", "cifar10"] = "digits"
    data_dir: str | None = None
    train_subset: int | None = Field(default=None, ge=1, description="train on the first N examples only")
    val_fraction: float | None = Field(default=None, ge=0, lt=1)


class ModelSpec(_Strict):
    hidden: list[Annotated[int, Field(ge=1)]] | None = Field(default=None, description="hidden widths")
    activation: Literal["leaky_relu", "leaky_softplus", "tanh"] | None = None
    bias: bool | None = None


class SearchSpec(_Strict):
    method: Literal["hyperopt", "random"] = "hyperopt"
    metric: Literal["train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy"] = (
        "val_accuracy"
    )
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
    experiment: str | None = Field(default=None, description="MLflow experiment; default: the sweep's name")


class SweepSpec(_Strict):
    """A declarative sweep: what to train, what to search, how to schedule, where to log."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    dataset: DatasetSpec = Field(default_factory=DatasetSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    algorithm: str | list[str] = Field(default="bp", description="a rule, or a list: one search per rule")
    parameters: dict[str, ParameterSpec] | None = Field(
        default=None, description="training-config fields: constants or distributions (default: the paper's)"
    )
    algorithm_parameters: dict[str, dict[str, ParameterSpec]] = Field(
        default_factory=dict, description="per-rule overrides of `parameters`"
    )
    search: SearchSpec = Field(default_factory=SearchSpec)
    scheduler: Annotated[
        Union[Annotated[AshaSchedulerSpec, Tag("asha")], Annotated[FifoSchedulerSpec, Tag("fifo")]],
        Discriminator(
            _scheduler_kind, custom_error_type="scheduler_type", custom_error_message="type must be 'asha' or 'fifo'"
        ),
    ] = Field(default_factory=AshaSchedulerSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    failure: FailureSpec = Field(default_factory=FailureSpec)
    checkpoint_every: int = Field(default=1, ge=1, description="epochs between checkpoints (a retry resumes there)")
    tracking: TrackingSpec = Field(default_factory=TrackingSpec)

    @model_validator(mode="after")
    def _check_semantics(self) -> "SweepSpec":
        errors = _semantic_errors(self)
        if errors:
            message = "; ".join(f"{e['loc']}: {e['msg']}" for e in errors)
            raise PydanticCustomError("spec_invalid", message.replace("{", "{{").replace("}", "}}"), {"errors": errors})
        return self

    # ---- loading ----------------------------------------------------------------------------

    @classmethod
    def from_yaml_text(cls, text: str) -> "SweepSpec":
        """A spec from YAML (or JSON, which is YAML too)."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SpecError([{"loc": "", "msg": f"not valid YAML/JSON: {exc}"}]) from None
        return parse_spec(data)

    @classmethod
    def from_file(cls, path: str | Path) -> "SweepSpec":
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise SpecError([{"loc": "", "msg": f"cannot read {path}: {exc.strerror or exc}"}]) from None
        return cls.from_yaml_text(text)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json", exclude_none=True), sort_keys=False)

    # ---- derived views -----------------------------------------------------------------------

    @property
    def algorithms(self) -> list[str]:
        return [self.algorithm] if isinstance(self.algorithm, str) else list(self.algorithm)

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
        if self.dataset.data_dir is not None:
            values["data_dir"] = self.dataset.data_dir
        for section, names in (
            (self.dataset, ("train_subset", "val_fraction")),
            (self.model, ("hidden", "activation", "bias")),
        ):
            for name in names:
                value = getattr(section, name)
                if value is not None:
                    values[name] = value
        return values

    def rule_parameters(self, rule: str) -> dict[str, Any]:
        """The parameters (constants and Distributions) that apply to `rule`, overrides included."""
        from rf_core import rule_fields

        fields = rule_fields(rule)
        source = self.parameters if self.parameters is not None else _paper_parameters()
        chosen = {name: value for name, value in source.items() if _applies(name, value, fields)}
        chosen.update(self.algorithm_parameters.get(rule, {}))
        return chosen


@lru_cache(maxsize=1)
def _paper_parameters() -> dict[str, Any]:
    adapter = TypeAdapter(dict[str, ParameterSpec])
    return adapter.validate_python(PAPER_PARAMETERS)


def _applies(name: str, value: Any, fields: frozenset[str]) -> bool:
    """Whether a parameter is something a rule reading `fields` has (bundles: all their fields)."""
    if name in TrainConfig.field_names():
        return name in fields
    keys = _bundle_keys(value)
    return bool(keys) and keys <= fields


def _bundle_keys(value: Any) -> set[str]:
    if isinstance(value, Distribution) and value.distribution == "choice" and value.values:
        if all(isinstance(v, dict) for v in value.values):
            return set().union(*(set(v) for v in value.values))
    return set()


def is_bundle(name: str, value: Any) -> bool:
    """A choice over mappings of fields, under a name that is not itself a field."""
    return name not in TrainConfig.field_names() and bool(_bundle_keys(value))


# ---- public entry points --------------------------------------------------------------------------


def parse_spec(data: Any) -> SweepSpec:
    """Validate a parsed YAML/JSON document; raises SpecError with field-level errors."""
    if not isinstance(data, dict):
        raise SpecError([{"loc": "", "msg": f"a sweep spec is a mapping, got {type(data).__name__}"}])
    try:
        return SweepSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_pydantic_errors(exc)) from None


def spec_json_schema() -> dict[str, Any]:
    schema = SweepSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema.setdefault("title", "rfsweep sweep spec")
    return schema


def _pydantic_errors(exc: ValidationError) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for err in exc.errors(include_url=False):
        if err["type"] == "spec_invalid":
            out.extend(err["ctx"]["errors"])
            continue
        out.append({"loc": format_loc(err["loc"]), "msg": _friendly(err)})
    return out


def format_loc(loc: tuple[Any, ...] | list[Any]) -> str:
    text = ""
    for part in loc:
        if part in (_DIST_TAG, _CONST_TAG) or (isinstance(part, str) and part.startswith(("function-", "union["))):
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _friendly(err: dict[str, Any]) -> str:
    if err["type"] == "extra_forbidden":
        return "unknown field"
    if err["type"] == "missing":
        return "required"
    return err["msg"]


# ---- semantic validation ------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(TrainConfig)


@lru_cache(maxsize=None)
def _adapter(name: str) -> TypeAdapter:
    return TypeAdapter(_field_types()[name])


def _base_kind(name: str) -> str:
    """'int', 'float', 'bool', 'str' or 'other' for a training-config field."""
    hint = _field_types()[name]
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    base = args[0]
    return base.__name__ if base in (int, float, bool, str) else "other"


def coerce_field(name: str, value: Any) -> Any:
    """A value converted to the training-config field's type (YAML may give '1e-3' as a string)."""
    kind = _base_kind(name)
    if kind == "int" and isinstance(value, float) and value.is_integer():
        value = int(value)
    coerced = _adapter(name).validate_python(value)
    if isinstance(coerced, tuple):
        coerced = list(coerced)
    return coerced


def field_problem(name: str, value: Any) -> str | None:
    """Why `value` is not acceptable for training-config field `name`, or None."""
    try:
        coerced = coerce_field(name, value)
    except ValidationError as exc:
        return exc.errors(include_url=False)[0]["msg"]
    if name in ("lr", "feedback_lr") and coerced is None:
        return None
    try:
        TrainConfig.from_dict({name: tuple(coerced) if isinstance(coerced, list) else coerced})
    except ValueError as exc:
        reasons = [p.split(": ", 1)[1] for p in str(exc).split("; ") if p.startswith(f"{name}: ")]
        return "; ".join(reasons) if reasons else str(exc)
    return None


def _is_multiple(value: float, q: float) -> bool:
    ratio = value / q
    return math.isclose(ratio, round(ratio), rel_tol=1e-9, abs_tol=1e-9)


def _semantic_errors(spec: SweepSpec) -> list[dict[str, str]]:
    from rf_core import available_rules, rule_fields

    errors: list[dict[str, str]] = []

    def bad(loc: str, msg: str) -> None:
        if not any(e["loc"] == loc for e in errors):  # the first reason for a location is the useful one
            errors.append({"loc": loc, "msg": msg})

    rules = available_rules()
    algorithms = spec.algorithms
    if not algorithms:
        bad("algorithm", "name at least one rule")
    for i, rule in enumerate(algorithms):
        loc = "algorithm" if isinstance(spec.algorithm, str) else f"algorithm[{i}]"
        if rule not in rules:
            bad(loc, f"unknown rule {rule!r}; choose one of {rules}")
        elif rule in algorithms[:i]:
            bad(loc, f"{rule} is listed twice")
    known_rules = [r for r in algorithms if r in rules]
    fields = TrainConfig.field_names()

    def check_parameter(loc: str, name: str, value: Any, user_fields: set[str]) -> None:
        if name in RESERVED_FIELDS:
            bad(loc, f"not a sweep parameter: {RESERVED_FIELDS[name]}")
            return
        if name in SECTION_FIELDS and _section_value(spec, name) is not None:
            bad(loc, f"also set by {SECTION_FIELDS[name]}; give it in one place")
        if name not in fields and not (isinstance(value, Distribution) and value.distribution == "choice"):
            bad(loc, f"unknown training-config field; known: {sorted(fields - set(RESERVED_FIELDS))}")
            return
        if isinstance(value, Distribution):
            _check_distribution(loc, name, value, bad, user_fields)
        else:
            problem = field_problem(name, value)
            if problem:
                bad(loc, problem)

    # parameters
    if spec.parameters is not None:
        user_fields: set[str] = set()
        for name, value in spec.parameters.items():
            loc = f"parameters.{name}"
            check_parameter(loc, name, value, user_fields)
            if known_rules and (name in fields or is_bundle(name, value)):
                users = [r for r in known_rules if _applies(name, value, rule_fields(r))]
                if not users and name not in RESERVED_FIELDS:
                    owners = [r for r in rules if _applies(name, value, rule_fields(r))]
                    hint = f"; it belongs to {owners}" if owners else ""
                    bad(loc, f"no listed rule uses it ({', '.join(known_rules)}){hint}")
    for rule, overrides in spec.algorithm_parameters.items():
        if rule not in algorithms:
            bad(f"algorithm_parameters.{rule}", f"{rule} is not in `algorithm` ({', '.join(algorithms)})")
            continue
        if rule not in rules:
            continue
        own = rule_fields(rule)
        seen: set[str] = set()
        for name, value in overrides.items():
            loc = f"algorithm_parameters.{rule}.{name}"
            check_parameter(loc, name, value, seen)
            if (
                (name in fields or is_bundle(name, value))
                and not _applies(name, value, own)
                and name not in RESERVED_FIELDS
            ):
                bad(loc, f"{rule} does not use {name}")

    # the fixed part of every rule's config must be a valid training config
    if not errors:
        for rule in known_rules:
            constants = spec.base_config(rule)
            for name, value in spec.rule_parameters(rule).items():
                if not isinstance(value, Distribution):
                    constants[name] = coerce_field(name, value)
            if isinstance(constants.get("hidden"), list):
                constants["hidden"] = tuple(constants["hidden"])
            try:
                TrainConfig.from_dict(constants)
            except ValueError as exc:
                for problem in str(exc).split("; "):
                    field, _, reason = problem.partition(": ")
                    bad(_where(spec, rule, field), reason or problem)

    # search
    search = spec.search
    val_fraction = spec.dataset.val_fraction if spec.dataset.val_fraction is not None else 0.1
    if search.metric.startswith("val_") and val_fraction == 0:
        bad("search.metric", f"{search.metric} needs a validation split (dataset.val_fraction > 0)")
    if not errors:
        _check_points(spec, known_rules, bad)

    # scheduler
    if isinstance(spec.scheduler, AshaSchedulerSpec) and spec.scheduler.grace_period > spec.scheduler.max_t:
        bad("scheduler.grace_period", f"must be <= max_t ({spec.scheduler.max_t})")
    return errors


def _section_value(spec: SweepSpec, name: str) -> Any:
    section, _, field = SECTION_FIELDS[name].partition(".")
    return getattr(getattr(spec, section), field)


def _where(spec: SweepSpec, rule: str, field: str) -> str:
    """The spec location that set a training-config field for `rule`."""
    if field in spec.algorithm_parameters.get(rule, {}):
        return f"algorithm_parameters.{rule}.{field}"
    if spec.parameters is not None and field in spec.parameters:
        return f"parameters.{field}"
    if field in SECTION_FIELDS:
        return SECTION_FIELDS[field]
    return {"dataset": "dataset.name", "data_dir": "dataset.data_dir", "algorithm": "algorithm"}.get(field, field)


def _check_distribution(loc: str, name: str, dist: Distribution, bad, user_fields: set[str]) -> None:
    kind = dist.distribution
    if kind == "choice":
        for arg in ("low", "high", "q"):
            if getattr(dist, arg) is not None:
                bad(f"{loc}.{arg}", "not an argument of choice (give `values`)")
        if not dist.values:
            bad(f"{loc}.values", "choice needs a non-empty list of values")
            return
        bundle = name not in TrainConfig.field_names()
        for i, value in enumerate(dist.values):
            vloc = f"{loc}.values[{i}]"
            if bundle:
                if not isinstance(value, dict) or not value:
                    bad(vloc, f"{name} is not a training-config field, so its values must be mappings of fields")
                    continue
                for key, item in value.items():
                    if key in RESERVED_FIELDS:
                        bad(f"{vloc}.{key}", f"not a sweep parameter: {RESERVED_FIELDS[key]}")
                    elif key not in TrainConfig.field_names():
                        bad(f"{vloc}.{key}", "unknown training-config field")
                    else:
                        problem = field_problem(key, item)
                        if problem:
                            bad(f"{vloc}.{key}", problem)
            else:
                problem = field_problem(name, value)
                if problem:
                    bad(vloc, problem)
        return

    if dist.values is not None:
        bad(f"{loc}.values", f"not an argument of {kind} (only choice takes values)")
    for arg in ("low", "high"):
        if getattr(dist, arg) is None:
            bad(f"{loc}.{arg}", f"required for {kind}")
    if dist.low is None or dist.high is None:
        return
    low, high, q = dist.low, dist.high, dist.q
    if not (math.isfinite(low) and math.isfinite(high)):
        bad(f"{loc}.low", "bounds must be finite")
        return
    if kind in ("quniform", "qloguniform") and q is None:
        bad(f"{loc}.q", f"required for {kind}")
    if kind in ("uniform", "loguniform") and q is not None:
        bad(f"{loc}.q", f"not an argument of {kind} (use q{kind})")
    if q is not None and not q > 0:
        bad(f"{loc}.q", "must be > 0")
        q = None
    if kind in ("loguniform", "qloguniform"):
        if not low > 0:
            bad(f"{loc}.low", f"must be > 0 for {kind}")
    if not low < high:
        bad(f"{loc}.high", f"must be > low ({low:g})")
    if kind == "randint":
        for arg, v in (("low", low), ("high", high)):
            if not float(v).is_integer():
                bad(f"{loc}.{arg}", "randint bounds must be integers")
        if q is not None and not float(q).is_integer():
            bad(f"{loc}.q", "randint's q must be an integer")
    if q is not None and kind in ("quniform", "qloguniform", "randint"):
        for arg, v in (("low", low), ("high", high)):
            if not _is_multiple(v, q):
                bad(f"{loc}.{arg}", f"must be a multiple of q ({q:g}) for {kind}")
    if name not in TrainConfig.field_names():
        bad(loc, f"{name} is not a training-config field (only a choice over mappings may have another name)")
        return
    field_kind = _base_kind(name)
    if field_kind in ("str", "bool", "other"):
        bad(f"{loc}.distribution", f"{name} takes a {field_kind if field_kind != 'other' else 'list'}: use choice")
        return
    if field_kind == "int":
        integral = kind == "randint" or (
            q is not None and float(q).is_integer() and kind in ("quniform", "qloguniform")
        )
        if not integral:
            bad(f"{loc}.distribution", f"{name} is an integer: use randint, or quniform/qloguniform with an integer q")
    # the bounds themselves must be acceptable values (randint's high is exclusive)
    top = high - 1 if kind == "randint" and q is None else high
    for arg, v in (("low", low), ("high", top)):
        problem = field_problem(name, int(v) if field_kind == "int" and float(v).is_integer() else v)
        if problem:
            bad(f"{loc}.{arg}", problem)


def _domain_contains(dist: Distribution, value: Any) -> bool:
    if dist.distribution == "choice":
        return any(_same(value, v) for v in dist.values or [])
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    high_ok = value < dist.high if dist.distribution == "randint" and dist.q is None else value <= dist.high
    return dist.low <= value and high_ok


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True) or a == b


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


def _check_points(spec: SweepSpec, rules: list[str], bad) -> None:
    per_rule = {rule: spec.rule_parameters(rule) for rule in rules}
    counts = {rule: 0 for rule in rules}
    for i, point in enumerate(spec.search.points_to_evaluate):
        loc = f"search.points_to_evaluate[{i}]"
        target = point.get("algorithm")
        if target is not None and target not in rules:
            bad(f"{loc}.algorithm", f"{target!r} is not in `algorithm` ({', '.join(spec.algorithms)})")
            continue
        targets = [target] if target else rules
        searched_any = set().union(
            *({n for n, v in per_rule[r].items() if isinstance(v, Distribution)} for r in targets)
        )
        for key in point:
            if key != "algorithm" and key not in searched_any:
                bad(f"{loc}.{key}", "not a searched parameter (only distributions can be given a point)")
        for rule in targets:
            counts[rule] += 1
            for name, dist in per_rule[rule].items():
                if not isinstance(dist, Distribution):
                    continue
                if name not in point:
                    bad(f"{loc}.{name}", f"missing: a point gives every searched parameter of {rule}")
                elif not _domain_contains(dist, point[name]):
                    bad(f"{loc}.{name}", f"{point[name]!r} is outside the {dist.distribution} domain")
    for rule, count in counts.items():
        if count > spec.search.num_samples:
            bad("search.points_to_evaluate", f"{count} points for {rule} but num_samples is {spec.search.num_samples}")
