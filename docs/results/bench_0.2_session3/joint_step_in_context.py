"""What rf_two_phase's joint step costs inside the real step, against timed alone, and four other ways to compute
the same step weights (docs/RF_CORE.md, "Step cost with the defaults"). One thread, the paper's network, batch 32,
random data at a step size of 1e-9 (as rf_core.bench.step_floor), rounds interleaved, medians.
Usage: python docs/results/bench_0.2_session3/joint_step_in_context.py [--rounds 9]"""

import argparse
import statistics
import time

import torch

from rf_core.bench import _build
from rf_core.rules import _rf

parser = argparse.ArgumentParser()
parser.add_argument("--rounds", type=int, default=9)
args = parser.parse_args()
torch.set_num_threads(1)
g = torch.Generator().manual_seed(1)
x, y = torch.randn(32, 784, generator=g), torch.randint(0, 10, (32,), generator=g)
_, bp = _build("bp", {}, "cpu", (400, 200, 100, 50), 32)
_, rf = _build("rf_two_phase", {}, "cpu", (400, 200, 100, 50), 32)
rf.step(x, y, 1e-9)  # development sleep, outside the timing
original = _rf._joint_step_weights
cache = rf.net.forward_cached(x)
knobs = rf.params.resolved()
layers = list(range(rf.net.num_layers))
shares = [knobs.hidden_step_scale / len(layers)] * (len(layers) - 1) + [1 / len(layers)]
precomputed = original(cache, knobs.joint_ridge, knobs.norm_eps, shares, layers)
EYE = torch.eye(32)


def step_with(weights_fn):
    def run():
        _rf._joint_step_weights = weights_fn
        try:
            rf.step(x, y, 1e-9)
        finally:
            _rf._joint_step_weights = original

    return run


def inverse_variant(kind):
    def weights(c, ridge, offset, shares_, layers_):
        grams = c.inputs[0].new_empty(len(layers_), 32, 32)
        for gram, layer in zip(grams, layers_, strict=True):
            torch.mm(c.inputs[layer], c.inputs[layer].T, out=gram)
        diagonals = grams.diagonal(dim1=1, dim2=2)
        diagonals.add_(diagonals.mean(1, keepdim=True).mul_(ridge).add_(offset))
        grams.mul_(_rf._reciprocal_shares(tuple(shares_[layer] for layer in layers_), grams.dtype, grams.device))
        if kind == "triangular":
            chol, _ = torch.linalg.cholesky_ex(grams)
            lower_inverse = torch.linalg.solve_triangular(chol, EYE, upper=False)
            inverse = lower_inverse.mT @ lower_inverse
        elif kind == "float64":
            chol, _ = torch.linalg.cholesky_ex(grams.double())
            inverse = torch.cholesky_inverse(chol).float()
        else:
            inverse, _ = torch.linalg.inv_ex(grams)
        return dict(zip(layers_, inverse.unbind(0), strict=True))

    return weights


cases = {
    "bp_step": lambda: bp.step(x, y, 1e-9),
    "rf_two_phase_step": lambda: rf.step(x, y, 1e-9),
    "step_with_precomputed_joint_weights": step_with(lambda *a: precomputed),
    "joint_weights_alone": lambda: original(cache, knobs.joint_ridge, knobs.norm_eps, shares, layers),
    "step_inverse_by_triangular_solves": step_with(inverse_variant("triangular")),
    "step_inverse_in_float64": step_with(inverse_variant("float64")),
    "step_inverse_by_linalg_inv_ex": step_with(inverse_variant("inv_ex")),
}
micros = {name: [] for name in cases}
for _ in range(args.rounds):
    for name, fn in cases.items():
        for _ in range(20):
            fn()
        start = time.perf_counter()
        for _ in range(200):
            fn()
        micros[name].append((time.perf_counter() - start) / 200 * 1e6)
bp_rounds = micros["bp_step"]
for name, values in micros.items():
    ratio = statistics.median(v / b for v, b in zip(values, bp_rounds, strict=True))
    print(f"{name:38s} {statistics.median(values):8.1f} µs  {ratio:.3f} × bp")
median = {name: statistics.median(values) for name, values in micros.items()}
inside = median["rf_two_phase_step"] - median["step_with_precomputed_joint_weights"]
print(f"joint weights inside the step: {inside:.0f} µs; alone: {median['joint_weights_alone']:.0f} µs")
