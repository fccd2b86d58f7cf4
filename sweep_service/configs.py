"""A training configuration as it ran, complete: every field its rule reads, each run-time default decided,
and the tags every run of it carries (which rf_core trained it).

`full_config_of(train_config)` is what a trial's MLflow params, `best_config.json`, `GET /sweeps/ID/best` and
`best_configs.json` hold (the trial's worker makes it from the TrainConfig it trains; `full_config(values)`
builds that TrainConfig first, for a single run): `train_config.resolved().to_dict()`, with the network's widths
written out (`hidden: None` means "the dataset's default"). A field whose value is None *by design* is left
out of `values`, and `notes` says why, so no consumer meets a null it has to guess about:

- `data_dir` unset: the dataset is found through RFSWEEP_DATA_DIR or the user cache (digits and synthetic
  read no files);
- `train_subset` unset: the whole training split;
- the joint-step knobs (`hidden_step_scale`, `joint_ridge`, `norm_eps`, `layer_step_scale`) under an RF
  `update` other than `gated_joint`: that update fixes the step and reads none of them (rf_core refuses a
  value for them there).

`TrainConfig.from_dict(full.values)` gives back the same configuration: a left-out field is its default.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweep_service import mlflow_names as names

if TYPE_CHECKING:
    from rf_core import TrainConfig

# Why a field is None by design (anything else left None is a bug: `full_config` refuses it).
UNSET_REASONS: dict[str, str] = {
    "data_dir": "not set: the dataset is read from RFSWEEP_DATA_DIR, else the user cache (digits and synthetic "
    "read no files)",
    "train_subset": "not set: the whole training split",
}
JOINT_STEP_REASON = "not read: update {update} fixes the step; only update gated_joint reads the joint-step knobs"


@dataclass(frozen=True)
class FullConfig:
    """A resolved training configuration: `values` (no None), `notes` (field → why it is left out)."""

    values: dict[str, Any]
    notes: dict[str, str] = field(default_factory=dict)
    description: dict[str, Any] | None = None  # `describe(values)`, made with the values (no second TrainConfig)

    def params(self) -> dict[str, str]:
        """As MLflow params: one per field, lists as JSON, everything else as `str` gives it."""
        return {k: _param_text(v) for k, v in self.values.items()}

    def rule_description(self) -> dict[str, Any]:
        return self.description if self.description is not None else describe(self.values)

    def to_json(self) -> dict[str, Any]:
        return {"values": self.values, "notes": self.notes, "description": self.rule_description()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FullConfig:
        return cls(dict(data["values"]), dict(data.get("notes") or {}), data.get("description"))


def full_config(values: Mapping[str, Any]) -> FullConfig:
    """The complete, resolved form of a flat training config (see the module docstring)."""
    from rf_core import TrainConfig

    given = {k: (tuple(v) if k == "hidden" and isinstance(v, list) else v) for k, v in values.items()}
    return full_config_of(TrainConfig.from_dict(given))


def full_config_of(train_config: TrainConfig) -> FullConfig:
    """`full_config` of a `TrainConfig` already built (the trial's worker builds one, and only one)."""
    config = train_config.resolved()
    resolved = config.to_dict()
    resolved["hidden"] = list(config.hidden_sizes)
    out: dict[str, Any] = {}
    notes: dict[str, str] = {}
    update = getattr(config.params, "update", "gated_joint")
    for name, value in resolved.items():
        if value is not None:
            out[name] = value
        elif name in UNSET_REASONS:
            notes[name] = UNSET_REASONS[name]
        elif update != "gated_joint":
            notes[name] = JOINT_STEP_REASON.format(update=update)
        else:
            raise ValueError(f"{name}: rf_core left it None after resolving; say why in sweep_service/configs.py")
    return FullConfig(out, notes, config.describe())


def _param_text(value: Any) -> str:
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(list(value) if isinstance(value, tuple) else value)
    return str(value)


@cache
def rf_core_version() -> str:
    """Which rf_core trained: the installed rfsweep version and a digest of rf_core's source files (an
    editable install or a local change shows up as another digest, where the version number would not)."""
    import rf_core

    try:
        version = importlib.metadata.version("rfsweep")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    digest = hashlib.sha256()
    root = Path(rf_core.__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return f"{version}+src.{digest.hexdigest()[:12]}"


def describe(values: Mapping[str, Any]) -> dict[str, Any]:
    """What a configuration runs, in rf_core's words: algorithm, update form, feedback source and the locality
    ledger (what it uses that a neuron would not have), each with a sentence (`*_detail`)."""
    from rf_core import TrainConfig

    given = {k: (tuple(v) if k == "hidden" and isinstance(v, list) else v) for k, v in values.items()}
    return TrainConfig.from_dict(given).describe()


def run_tags(full: FullConfig) -> dict[str, str]:
    """The tags every run of this configuration carries, trial or single training run: which rf_core trained it,
    the rule's update form, feedback source and locality ledger, and the fields left out of its params."""
    rule = full.rule_description()
    ledger = rule["ledger"]
    tags = {
        names.RF_CORE_VERSION: rf_core_version(),
        names.UPDATE: rule["update"],
        names.FEEDBACK: rule["feedback"],
        names.NONLOCAL: ",".join(k for k, used in ledger.items() if used) or "none",
        **{f"{names.LEDGER_PREFIX}{k}": str(bool(used)).lower() for k, used in ledger.items()},
    }
    if full.notes:
        tags[names.CONFIG_NOTES] = json.dumps(full.notes, sort_keys=True)
    return tags
