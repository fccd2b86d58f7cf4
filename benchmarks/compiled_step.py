"""Does torch.compile pay for rf_core's training step on this CPU? (issue 17, "one call per training step")

Builds a rule's step core — the forward pass, the output error, the rule's directions and the in-place updates
(the sleep stays outside: it holds the noise draws and runs once per period) — eager and through torch.compile
(inductor; `--mode` picks the mode), checks both give the same weights, then times them interleaved, one thread
unless `--threads`. Reports the compile seconds, each median, the compiled/eager ratio and the graph breaks
(torch._dynamo.explain). Usage:
    python benchmarks/compiled_step.py [--rules bp rf_two_phase rf_parallel] [--threads 1] [--mode default] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch

from rf_core import TrainConfig, get_rule
from rf_core.bench import PAPER_HIDDEN, machine
from rf_core.model import MLP


def _setup(name: str) -> tuple[Any, Any, torch.Tensor, torch.Tensor]:
    config = TrainConfig(algorithm=name, dataset="mnist", hidden=PAPER_HIDDEN).resolved()
    generator = torch.Generator().manual_seed(0)
    net = MLP.from_config(config, 784, 10, generator)
    rule = get_rule(name)(net, config.params, generator)
    x = torch.randn(32, 784, generator=generator)
    y = torch.randint(0, 10, (32,), generator=generator)
    rule.before_step()
    return rule, config, x, y


def _core(rule: Any) -> Any:  # a closure over the rule, compiled as a whole
    def core(x: torch.Tensor, y: torch.Tensor, lr: float) -> tuple[torch.Tensor, torch.Tensor]:
        net = rule.net
        cache = net.forward_cached(x)
        logits = cache.logits
        log_probs = torch.log_softmax(logits, dim=1)
        loss = -log_probs.gather(1, y[:, None]).squeeze(1)
        error = log_probs.exp() - torch.nn.functional.one_hot(y, logits.shape[1]).to(log_probs.dtype)
        for layer, (errors, inputs, _) in enumerate(rule.factored_directions(cache, error)):
            net.weights[layer].addmm_(errors.T, inputs, alpha=-lr)
        rule.after_step(cache)
        return logits, loss

    return core


def measure(name: str, mode: str, rounds: int = 7, steps: int = 300) -> dict[str, Any]:
    rule, _, x, y = _setup(name)
    eager = _core(rule)
    explanation = torch._dynamo.explain(eager)(x, y, 1e-9)
    started = time.perf_counter()
    compiled = torch.compile(eager, dynamic=False, mode=None if mode == "default" else mode)
    with torch.no_grad():
        compiled(x, y, 1e-9)
    compile_seconds = time.perf_counter() - started

    with torch.no_grad():  # the same step: one from identical weights each way
        before = [w.clone() for w in rule.net.weights]
        eager(x, y, 0.1)
        after_eager = [w.clone() for w in rule.net.weights]
        for w, b in zip(rule.net.weights, before, strict=True):
            w.copy_(b)
        compiled(x, y, 0.1)
        same = all(
            torch.allclose(a, w, rtol=1e-4, atol=1e-6) for a, w in zip(after_eager, rule.net.weights, strict=True)
        )

    def timed(fn: Any) -> float:
        with torch.no_grad():
            for _ in range(20):
                fn(x, y, 1e-9)
            start = time.perf_counter()
            for _ in range(steps):
                fn(x, y, 1e-9)
        return (time.perf_counter() - start) / steps * 1e6

    eager_us, compiled_us = [], []
    for _ in range(rounds):
        eager_us.append(timed(eager))
        compiled_us.append(timed(compiled))
    return {
        "rule": name,
        "mode": mode,
        "compile_seconds": round(compile_seconds, 1),
        "graph_breaks": explanation.graph_break_count,
        "same_step": same,
        "eager_us": round(statistics.median(eager_us), 1),
        "compiled_us": round(statistics.median(compiled_us), 1),
        "compiled_over_eager": round(statistics.median(c / e for c, e in zip(compiled_us, eager_us, strict=True)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", nargs="+", default=["bp", "rf_two_phase", "rf_parallel"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--mode", default="default")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [measure(name, args.mode) for name in args.rules]
    report = {"rows": rows, "threads": args.threads, **machine()}
    if args.json:
        print(json.dumps(report))
        return
    for row in rows:
        print(json.dumps(row))


if __name__ == "__main__":
    main()
