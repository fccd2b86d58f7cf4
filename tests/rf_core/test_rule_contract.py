"""The rule contract: what every learning rule in the registry must do. Adding a rule is adding one module to
rf_core/rules/ (rf_core.rules imports every module there, and the module registers its rule); these tests are
parametrized from the registry, so the new rule is checked without being named anywhere else.

A rule must
(a) declare its locality ledger (the information it uses that a neuron would not have: weight transport,
    feedback formed from W, closed-form inverses, batch-global steps, a broadcast output error) and describe
    itself, and the declared ledger must be what the rule does, observed by watching its torch calls
    (ledger_watch.py, the machinery test_ledger.py uses for the non-default settings);
(b) take a training step on a small random batch with a finite loss and finite, moved weights;
(c) keep its whole state where checkpoints carry it (the network's and the rule's state_dicts, feedback buffers
    and counters included, and the generator: `rf_core.train.training_state`): saved, loaded into a fresh
    instance built from another seed, the next steps are bit for bit those of the original;
(d) declare its typed hyperparameters (`Params`: a frozen dataclass of RuleParams, each field's default of
    the field's type, and the defaults valid), and its name, summary, default_lr and default_activation.

Each clause is a `check_*` function, run on every registered rule by the parametrized tests and, at the end,
on throwaway rules that break it, to show that the clause does fail such a rule.
"""

from __future__ import annotations

import dataclasses
import io
import math
import types
import typing
from pathlib import Path
from typing import Any

import pytest
import torch
from ledger_watch import declared_ledger, observed_ledger, small_network

from rf_core import Ledger, RuleParams, TrainConfig, available_rules, get_rule
from rf_core.config import ACTIVATIONS, COMMON_FIELDS
from rf_core.model import ForwardCache
from rf_core.rules import base, rule_module_names
from rf_core.rules.base import LayerUpdate, LearningRule, backprop_through, register, registry
from rf_core.rules.bp import Backprop
from rf_core.train import load_training_state, training_state

RULES = available_rules()
STEPS = 3  # steps before the checks (and, in the round trip, after the reload): past every rule's first-step
# events (development, the first sleep) into its ordinary steps, and few enough to keep this file at a second
DESCRIBE_KEYS = {"update", "update_detail", "feedback", "feedback_detail"}


def declaring_class(rule_type: type[LearningRule], attribute: str) -> type | None:
    """The class in `rule_type`'s MRO that defines `attribute`, or None when only LearningRule's placeholder
    does (for `ledger` and `describe`: a NotImplementedError; for `Params`: the field-less RuleParams)."""
    for klass in rule_type.__mro__:
        if attribute in vars(klass):
            return None if klass is LearningRule else klass
    return None


def _default_matches_hint(value: Any, hint: Any) -> bool:
    """Whether a default is of its field's declared type (for plain classes and unions of them; other
    generics are checked by their origin, `tuple[int, ...]` as tuple). An int default passes a float field."""
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_default_matches_hint(value, arm) for arm in typing.get_args(hint))
    if hint is type(None):
        return value is None
    origin = typing.get_origin(hint) or hint
    return isinstance(value, origin)


# ---- (d) typed hyperparameters --------------------------------------------------------------------------


def check_declares_typed_params(rule_type: type[LearningRule]) -> None:
    assert declaring_class(rule_type, "Params") is not None, (
        f"{rule_type.__name__} declares no Params (a rule without hyperparameters says `Params = RuleParams`)"
    )
    params_type = rule_type.Params
    assert issubclass(params_type, RuleParams)
    assert dataclasses.is_dataclass(params_type), f"{params_type.__name__} is not a dataclass"
    assert params_type.__dataclass_params__.frozen, f"{params_type.__name__} is not frozen"  # type: ignore[attr-defined]
    hints = typing.get_type_hints(params_type)
    defaults = params_type()  # every field has a default: a TypeError here names the one without
    for field in dataclasses.fields(params_type):
        assert field.name not in COMMON_FIELDS, f"{field.name} is a common field: from_dict would never route it here"
        value = getattr(defaults, field.name)
        assert _default_matches_hint(value, hints[field.name]), f"{field.name}: {value!r} is not {hints[field.name]}"
    assert set(params_type.choices) <= set(params_type.field_names()), "choices for a field Params does not have"
    assert defaults.problems() == [], "the defaults do not validate"
    resolved = defaults.resolved()
    assert type(resolved) is params_type and resolved.problems() == [], "the resolved defaults do not validate"
    for field, allowed in params_type.choices.items():
        assert getattr(resolved, field) in allowed, f"{field}: the resolved default is not one of its choices"


def check_declares_its_common_defaults(rule_type: type[LearningRule]) -> None:
    assert isinstance(getattr(rule_type, "name", None), str) and rule_type.name, "no name"
    assert registry().get(rule_type.name) is rule_type, f"{rule_type.name} is not registered under its name"
    assert isinstance(getattr(rule_type, "summary", None), str) and rule_type.summary, "no summary"
    lr = getattr(rule_type, "default_lr", None)
    assert isinstance(lr, float) and math.isfinite(lr) and lr > 0, f"default_lr {lr!r} is not a positive float"
    assert rule_type.default_activation in ACTIVATIONS


# ---- (a) the ledger ---------------------------------------------------------------------------------------


def check_declares_ledger_and_describes_itself(rule_type: type[LearningRule]) -> None:
    assert declaring_class(rule_type, "ledger") is not None, f"{rule_type.__name__} declares no ledger"
    assert declaring_class(rule_type, "describe") is not None, f"{rule_type.__name__} does not describe itself"
    assert declaring_class(rule_type, "factored_directions") is not None, f"{rule_type.__name__} has no update"
    params = rule_type.Params().resolved()
    assert isinstance(rule_type.ledger(params), Ledger)
    description = rule_type.describe(params)
    assert set(description) == DESCRIBE_KEYS and all(isinstance(v, str) and v for v in description.values())


def check_ledger_is_what_it_does(name: str) -> None:
    observed, declared = observed_ledger(name, {}), declared_ledger(name, {})
    assert observed == declared, f"{name} declares {declared} but does {observed}"


# ---- (b) a training step ----------------------------------------------------------------------------------


def _built(
    rule_type: type[LearningRule], seed: int
) -> tuple[LearningRule, torch.Generator, torch.Tensor, torch.Tensor]:
    net, generator, x, y = small_network(seed)
    return rule_type(net, rule_type.Params(), generator), generator, x, y


def check_a_step_is_finite(rule_type: type[LearningRule]) -> None:
    rule, _, x, y = _built(rule_type, seed=0)
    before = [w.clone() for w in rule.net.weights]
    for _ in range(STEPS):
        logits, loss = rule.step(x, y, lr=rule_type.default_lr)
        assert loss.shape == (len(y),) and torch.isfinite(loss).all(), f"loss {loss}"
        assert torch.isfinite(logits).all()
    assert all(torch.isfinite(w).all() for w in rule.net.weights), "weights are not finite"
    assert all(torch.isfinite(b).all() for b in rule.buffers() if b.is_floating_point()), "buffers are not finite"
    assert any(not torch.equal(w, w0) for w, w0 in zip(rule.net.weights, before, strict=True)), "nothing moved"
    assert int(rule.steps_done) == STEPS


# ---- (c) the state round trip -----------------------------------------------------------------------------


def check_state_round_trips(rule_type: type[LearningRule]) -> None:
    original, generator, x, y = _built(rule_type, seed=0)
    for _ in range(STEPS):
        original.step(x, y, lr=rule_type.default_lr)
    saved = io.BytesIO()
    # the state part of `train`'s checkpoints (get_state adds the epoch, the history and the config)
    torch.save(training_state(original.net, original, generator), saved)
    fresh, fresh_generator, *_ = _built(rule_type, seed=1)
    assert not torch.equal(fresh.net.weights[0], original.net.weights[0])  # so the load below has work to do
    saved.seek(0)
    load_training_state(torch.load(saved, weights_only=True), fresh.net, fresh, fresh_generator)
    for step in range(STEPS):
        logits, loss = original.step(x, y, lr=rule_type.default_lr)
        fresh_logits, fresh_loss = fresh.step(x, y, lr=rule_type.default_lr)
        assert torch.equal(logits, fresh_logits) and torch.equal(loss, fresh_loss), f"step {step} after the reload"
    for mine, theirs in ((original.net, fresh.net), (original, fresh)):
        a, b = mine.state_dict(), theirs.state_dict()
        assert a.keys() == b.keys()
        assert [k for k in a if not torch.equal(a[k], b[k])] == [], "state differs after the same steps"
    assert torch.equal(generator.get_state(), fresh_generator.get_state())
    assert original.run_report() == fresh.run_report()
    assert original.epoch_report() == fresh.epoch_report()


# ---- every registered rule --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RULES)
def test_a_rule_declares_typed_params_whose_defaults_validate(name):
    check_declares_typed_params(get_rule(name))
    check_declares_its_common_defaults(get_rule(name))
    TrainConfig(algorithm=name)  # the whole config with the rule's defaults validates too (ConfigError if not)


@pytest.mark.parametrize("name", RULES)
def test_a_rule_declares_its_ledger_and_describes_itself(name):
    check_declares_ledger_and_describes_itself(get_rule(name))


@pytest.mark.parametrize("name", RULES)
def test_a_rules_declared_ledger_is_what_it_does(name):
    check_ledger_is_what_it_does(name)


@pytest.mark.parametrize("name", RULES)
def test_a_training_step_gives_finite_loss_and_finite_moved_weights(name):
    check_a_step_is_finite(get_rule(name))


@pytest.mark.parametrize("name", RULES)
def test_a_rules_state_round_trips_through_a_checkpoint_into_a_fresh_instance(name):
    check_state_round_trips(get_rule(name))


def test_the_registry_holds_exactly_the_rules_of_the_files_in_rf_core_rules():
    """Every file of rf_core/rules/ but the helpers (`_*`) and `base` is imported and registered a rule (a module
    without @register is not a rule anybody can run), and every registered rule comes from one of them."""
    package = Path(base.__file__).parent  # rf_core/rules/
    files = {f"rf_core.rules.{p.stem}" for p in package.glob("*.py") if not p.stem.startswith("_") and p.stem != "base"}
    assert set(rule_module_names()) == files
    assert {rule_type.__module__ for rule_type in registry().values()} == files
    assert len(RULES) >= 7  # bp, bp_joint, dfa, fa, pseudobackprop, rf_parallel, rf_two_phase at least


def test_an_unknown_rule_name_is_refused_with_the_names_there_are():
    with pytest.raises(ValueError) as refused:
        get_rule("nope")
    assert str(refused.value) == f"algorithm: unknown rule 'nope'; choose one of {RULES}"


# ---- the contract fails a rule that breaks it -------------------------------------------------------------


class _GradientUpdate:
    """The update of a throwaway rule: backprop's, so only what each throwaway leaves out differs."""

    def factored_directions(self, cache: ForwardCache, output_error: torch.Tensor) -> list[LayerUpdate]:
        net = self.net  # type: ignore[attr-defined]
        return backprop_through(cache, output_error, list(net.weights), net)


@pytest.fixture
def scratch_registry(monkeypatch):
    """The registry as a copy for one test: throwaway rules registered in it are gone afterwards."""
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))


def test_a_rule_module_without_params_or_ledger_fails_the_contract(scratch_registry):
    @register
    class Undeclared(_GradientUpdate, LearningRule):  # a rule file that forgot its Params and its ledger
        name = "contract_test_undeclared"
        summary = "a rule without Params or ledger"
        default_lr = 0.1

    assert "contract_test_undeclared" in available_rules()  # what the parametrization reads
    with pytest.raises(AssertionError, match="declares no Params"):
        check_declares_typed_params(Undeclared)
    with pytest.raises(AssertionError, match="declares no ledger"):
        check_declares_ledger_and_describes_itself(Undeclared)


def test_a_rule_whose_ledger_hides_what_it_reads_fails_the_contract(scratch_registry):
    @register
    class ClaimsNoWeightTransport(Backprop):
        name = "contract_test_no_transport_claimed"

        @classmethod
        def ledger(cls, params: RuleParams) -> Ledger:
            return dataclasses.replace(super().ledger(params), weight_transport=False)

    with pytest.raises(AssertionError, match="declares"):
        check_ledger_is_what_it_does(ClaimsNoWeightTransport.name)


def test_a_rule_that_forms_feedback_from_the_sign_of_w_before_its_step_fails_a_ledger_that_hides_it(scratch_registry):
    """sign(W) read outside the backward pass (here, fa refreshing B_l = sign(W_l)/√fan_in before every step) is
    feedback formed from W: declaring fa's ledger for it fails."""
    from rf_core.rules.fa import FeedbackAlignment

    @register
    class SignRefreshed(FeedbackAlignment):
        name = "contract_test_sign_refreshed"

        def before_step(self) -> None:
            for l, w in enumerate(self.net.weights):
                getattr(self, f"feedback_{l}").copy_(torch.sign(w) / w.shape[1] ** 0.5)

    with pytest.raises(AssertionError, match="declares"):
        check_ledger_is_what_it_does(SignRefreshed.name)


def test_a_rule_with_an_invalid_default_fails_the_contract():
    @dataclasses.dataclass(frozen=True)
    class BadDefault(RuleParams):
        mode: str = "neither"
        choices: typing.ClassVar[dict[str, tuple[str, ...]]] = {"mode": ("one", "other")}

    class WithBadDefault(Backprop):
        name = "contract_test_bad_default"
        Params = BadDefault

    with pytest.raises(AssertionError, match="do not validate"):
        check_declares_typed_params(WithBadDefault)


def test_a_rule_whose_step_goes_non_finite_fails_the_contract():
    class Exploding(Backprop):
        name = "contract_test_exploding"

        def factored_directions(self, cache: ForwardCache, output_error: torch.Tensor) -> list[LayerUpdate]:
            return [
                (errors * math.inf, inputs, bias)
                for errors, inputs, bias in super().factored_directions(cache, output_error)
            ]

    with pytest.raises(AssertionError):
        check_a_step_is_finite(Exploding)


def test_a_rule_keeping_state_outside_its_state_dict_fails_the_contract():
    class Forgetful(Backprop):  # its step size shrinks with a count that is a plain attribute, not a buffer
        name = "contract_test_forgetful"

        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            self.calls = 0

        def factored_directions(self, cache: ForwardCache, output_error: torch.Tensor) -> list[LayerUpdate]:
            self.calls += 1
            return [
                (errors / self.calls, inputs, bias)
                for errors, inputs, bias in super().factored_directions(cache, output_error)
            ]

    with pytest.raises(AssertionError, match="after the reload"):
        check_state_round_trips(Forgetful)
