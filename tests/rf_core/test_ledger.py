"""Each rule's locality ledger in every setting of its fixed-choice fields, proven by watching what the rule
touches (tests/rf_core/ledger_watch.py); the rule contract (test_rule_contract.py) checks every rule's defaults.

The settings come from the registry: every registered rule, every field in its Params.choices, every value
other than the default. A new rule, field or value is checked without being listed here.
"""

import pytest
import torch
from ledger_watch import Watch, declared_ledger, observed_ledger, small_network

from rf_core import TrainConfig, available_rules, get_rule

# A setting whose ledger entry only shows when something else makes it act, with what makes it act:
# `fallback: oracle` replaces the feedback only after a failed sleep, and a tiny LMS rate makes every sleep fail.
MADE_TO_ACT = {("fallback", "oracle"): {"sleep_rate": 1e-6}}


def non_default_settings() -> list[tuple[str, dict[str, object]]]:
    """(rule, params) for every registered rule and every non-default value of each of its choice fields."""
    settings = []
    for name in available_rules():
        params_type = get_rule(name).Params
        defaults = params_type().resolved()
        for field, allowed in params_type.choices.items():
            for value in allowed:
                if value != getattr(defaults, field):
                    settings.append((name, {field: value, **MADE_TO_ACT.get((field, value), {})}))
    return settings


SETTINGS = non_default_settings()


def test_the_settings_cover_every_ledger_changing_choice_the_rules_have_today():
    """The derivation itself: the settings the hand-written list held are among them (not silently empty)."""
    expected = [
        ("pseudobackprop", {"update": "paper"}),
        ("rf_two_phase", {"update": "paper"}),
        ("rf_two_phase", {"feedback": "oracle_cholesky"}),
        ("rf_two_phase", {"feedback": "oracle_recirculation"}),
        ("rf_two_phase", {"fallback": "oracle", "sleep_rate": 1e-6}),
        ("rf_parallel", {"update": "paper_as_printed"}),
        ("rf_parallel", {"feedback_init": "oracle"}),
    ]
    assert [s for s in expected if s not in SETTINGS] == []


@pytest.mark.parametrize("name, params", SETTINGS, ids=[f"{n}-{p}" for n, p in SETTINGS])
def test_each_rules_declared_ledger_is_what_it_does_in_each_setting(name, params):
    assert observed_ledger(name, params) == declared_ledger(name, params)


def test_with_defaults_no_rf_rule_reads_w_to_form_or_refresh_its_feedback_and_the_oracles_do():
    for name in ("rf_two_phase", "rf_parallel"):
        assert observed_ledger(name, {})["feedback_from_weights"] is False
        assert TrainConfig(algorithm=name).describe()["ledger"]["feedback_from_weights"] is False
    assert observed_ledger("rf_two_phase", {"feedback": "oracle_cholesky"})["feedback_from_weights"] is True
    assert observed_ledger("rf_parallel", {"feedback_init": "oracle"})["feedback_from_weights"] is True


def test_the_watch_sees_a_read_of_w_that_bypasses_the_probe():
    """The guard itself: a learner that reads W directly (not as y ↦ W y) is caught."""
    net, *_ = small_network()
    watch = Watch(list(net.weights))
    with watch:
        torch.linalg.norm(net.weights[1])
    assert watch.read_weights
