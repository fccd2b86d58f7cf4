"""rf_core: learning rules for fully connected networks — backprop, feedback alignment and Reciprocal
Feedback (pseudoinverse feedback) — with datasets, a training loop and metrics. Pure PyTorch."""

from rf_core.config import ALL_FIELDS, ConfigError, TrainConfig, field_choices, field_problem, field_types, rule_fields
from rf_core.metrics import epochs_to_90
from rf_core.params import Ledger, RuleParams
from rf_core.rules import available_rules, get_rule
from rf_core.rules._feedback_angle import ANGLE_METRIC
from rf_core.rules.base import RULE_METRIC_PREFIX
from rf_core.train import METRIC_NAMES, ResultStatus, TrainResult, train, untrained_test_accuracy

__all__ = [
    "ALL_FIELDS",
    "ANGLE_METRIC",
    "METRIC_NAMES",
    "RULE_METRIC_PREFIX",
    "ConfigError",
    "Ledger",
    "ResultStatus",
    "RuleParams",
    "TrainConfig",
    "TrainResult",
    "available_rules",
    "epochs_to_90",
    "field_choices",
    "field_problem",
    "field_types",
    "get_rule",
    "rule_fields",
    "train",
    "untrained_test_accuracy",
]
