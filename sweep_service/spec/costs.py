"""Where a spec asks for more than the limits allow (`sweep_service.limits.CostLimits`), and the limits stated in
the spec's JSON Schema. Every value a field can take counts: a constant, each value of a choice (bundles
included), a distribution's upper bound."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from sweep_service.limits import CostLimits
from sweep_service.problems import Loc, Problem
from sweep_service.spec.fields import field_names
from sweep_service.spec.model import Distribution, SweepSpec

LIMIT_EXCEEDED = "limit_exceeded"
# Inputs and classes of rf_core's datasets (rf_core/data.py), for a network's weight count.
DATASET_SHAPES: dict[str, tuple[int, int]] = {
    "mnist": (784, 10),
    "fashion_mnist": (784, 10),
    "cifar10": (3072, 10),
    "digits": (64, 10),
    "synthetic": (20, 5),
}

# Training-config fields bounded by a limit of their own (hidden is checked as a network).
COUNTED_FIELDS = {
    "sleep_steps": "sleep_steps",
    "sleep_max_steps": "sleep_steps",
    "development_steps": "sleep_steps",
    "sleep_noise_batch": "noise_batch",
}


def cost_problems(spec: SweepSpec, limits: CostLimits) -> list[Problem]:
    """Every place the spec asks for more than `limits` allow (empty: nothing)."""
    out: list[Problem] = []

    def over(loc: Loc, value: Any, name: str, what: str) -> None:
        limit = getattr(limits, name)
        if _is_number(value) and value > limit:
            message = f"{what.format(_num(value))} exceeds the server limit of {_num(limit)} ({limits.setting(name)})"
            out.append(Problem(loc, message, LIMIT_EXCEEDED))

    search = spec.search
    over(("search", "num_samples"), search.num_samples, "num_samples", "num_samples {}")
    if search.num_samples <= limits.num_samples:
        rules = len(spec.algorithms)
        over(("search", "num_samples"), spec.total_trials, "total_trials", f"{{}} trials in all ({rules} rules)")
    over(("scheduler", "max_t"), spec.max_t, "max_t", "max_t {}")
    over(("search", "max_concurrent_trials"), search.max_concurrent_trials, "concurrency", "max_concurrent_trials {}")
    over(("resources", "cpu"), spec.resources.cpu, "cpu_per_trial", "cpu per trial {}")
    over(("resources", "gpu"), spec.resources.gpu, "gpu_per_trial", "gpu per trial {}")
    over(("failure", "max_failures"), spec.failure.max_failures, "max_failures", "max_failures {}")
    inputs, classes = DATASET_SHAPES.get(spec.dataset.name, (0, 0))
    for loc, field, value in _field_values(spec):
        if field == "hidden":
            problem = _network_problem(value, inputs, classes, limits)
            if problem:
                out.append(Problem(loc, problem, LIMIT_EXCEEDED))
        elif field in COUNTED_FIELDS:
            over(loc, value, COUNTED_FIELDS[field], f"{field} {{}}")
    return out


def _network_problem(hidden: Any, inputs: int, classes: int, limits: CostLimits) -> str | None:
    if not isinstance(hidden, (list, tuple)) or not all(_is_number(h) for h in hidden):
        return None  # not a list of widths: the spec's other checks say so
    if len(hidden) > limits.depth:
        return f"{len(hidden)} hidden layers exceed the server limit of {limits.depth} ({limits.setting('depth')})"
    widest = max(hidden, default=0)
    if widest > limits.width:
        return f"width {_num(widest)} exceeds the server limit of {limits.width} ({limits.setting('width')})"
    sizes = [inputs, *hidden, classes]
    weights = sum(a * b for a, b in itertools.pairwise(sizes))
    if weights > limits.weights:
        return (
            f"{_num(weights)} weights ({'-'.join(str(int(s)) for s in sizes)}) exceed the server limit of "
            f"{_num(limits.weights)} ({limits.setting('weights')})"
        )
    return None


def _field_values(spec: SweepSpec) -> Iterator[tuple[Loc, str, Any]]:
    """(location, training-config field, a value it may take) for every value the spec can give a field."""
    if spec.model.hidden is not None:
        yield ("model", "hidden"), "hidden", spec.model.hidden
    groups: list[tuple[Loc, dict[str, Any]]] = [(("parameters",), spec.parameters or {})]
    groups += [(("algorithm_parameters", rule), p) for rule, p in spec.algorithm_parameters.items()]
    fields = field_names()
    for prefix, parameters in groups:
        for name, value in parameters.items():
            loc: Loc = (*prefix, name)
            if not isinstance(value, Distribution):
                yield loc, name, value
            elif value.distribution == "choice":
                for i, option in enumerate(value.values or []):
                    if name in fields:
                        yield (*loc, "values", i), name, option
                    elif isinstance(option, dict):  # a bundle: fields chosen together
                        for key, item in option.items():
                            yield (*loc, "values", i, key), key, item
            elif value.high is not None:
                exclusive = value.distribution == "randint" and value.q is None
                yield (*loc, "high"), name, value.high - 1 if exclusive else value.high


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _num(value: float) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    return f"{int(value):,}" if value.is_integer() else f"{value:g}"


def state_in_schema(schema: dict[str, Any], limits: CostLimits) -> dict[str, Any]:
    """`schema` (the spec's JSON Schema) with the limits in it: `maximum`/`maxItems` where the structure allows,
    and all of them, with their settings, under `x-rfsweep-limits`."""
    defs = schema.get("$defs", {})

    def cap(model: str, prop: str, **keywords: Any) -> None:
        node = defs.get(model, {}).get("properties", {}).get(prop)
        if node is None:
            return
        branches = node.get("anyOf", [node])
        for branch in branches:
            if branch.get("type") in ("integer", "number") and "maximum" in keywords:
                branch["maximum"] = keywords["maximum"]
            if branch.get("type") == "array":
                if "max_items" in keywords:
                    branch["maxItems"] = keywords["max_items"]
                if "item_maximum" in keywords:
                    branch.setdefault("items", {})["maximum"] = keywords["item_maximum"]

    cap("SearchSpec", "num_samples", maximum=limits.num_samples)
    cap("SearchSpec", "max_concurrent_trials", maximum=limits.concurrency)
    cap("AshaSchedulerSpec", "max_t", maximum=limits.max_t)
    cap("FifoSchedulerSpec", "max_t", maximum=limits.max_t)
    cap("ResourcesSpec", "cpu", maximum=limits.cpu_per_trial)
    cap("ResourcesSpec", "gpu", maximum=limits.gpu_per_trial)
    cap("FailureSpec", "max_failures", maximum=limits.max_failures)
    cap("ModelSpec", "hidden", max_items=limits.depth, item_maximum=limits.width)
    schema["x-rfsweep-limits"] = limits.described()
    return schema
