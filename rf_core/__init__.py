"""rf_core: learning rules for fully connected networks — backprop, feedback alignment and Reciprocal
Feedback (pseudoinverse feedback) — with datasets, a training loop and metrics. Pure PyTorch."""

from rf_core.config import TrainConfig
from rf_core.rules import available_rules, get_rule, rule_fields
from rf_core.metrics import epochs_to_90
from rf_core.train import METRIC_NAMES, TrainResult, train, untrained_test_accuracy

__all__ = ["METRIC_NAMES", "TrainConfig", "TrainResult", "available_rules", "get_rule", "rule_fields", "train",
           "epochs_to_90", "untrained_test_accuracy"]
