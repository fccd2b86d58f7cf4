"""Benchmarks of rf_core itself (what `rfsweep bench` runs): step cost per rule, epoch throughput against
the standard PyTorch recipe, and how step cost grows with width and batch.

Each comparison runs both sides in this process, interleaved round by round, and reports the median of
per-round ratios, so that the noise of a shared machine hits both sides of a ratio alike.
"""

from __future__ import annotations

import gzip
import math
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from rf_core.config import TrainConfig
from rf_core.model import MLP
from rf_core.rules import get_rule

PAPER_HIDDEN = (400, 200, 100, 50)  # the paper's MNIST network: 784-400-200-100-50-10

STEP_VARIANTS: dict[str, dict[str, Any]] = {
    "bp": {},
    "fa": {},
    "dfa": {},
    "bp_joint": {},
    "rf_parallel": {},
    "rf_two_phase": {},  # the default: feedback learned from noise, a sleep every 100 steps
    "rf_two_phase[pinv_every=20]": {"pinv_every": 20},  # the paper's period
    "rf_two_phase[oracle_cholesky]": {"feedback": "oracle_cholesky"},
    "rf_two_phase[update=paper]": {"update": "paper"},
    "pseudobackprop": {},
}


def machine() -> dict[str, Any]:
    return {
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def _sync(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)


def _build(name: str, overrides: dict, device: str, hidden, batch: int, inputs: int = 784):
    algorithm = name.split("[")[0]
    config = TrainConfig.from_dict({"algorithm": algorithm, "dataset": "mnist", "hidden": tuple(hidden),
                                    "batch_size": batch, "device": device, **overrides}).resolved()
    generator = torch.Generator().manual_seed(0)
    net = MLP.from_config(config, inputs, 10, generator)
    return config, get_rule(algorithm)(net, config.params, generator).to(device)


def _time_steps(config, rule, x, y, steps: int) -> float:
    sync = _sync(config.device)
    sync()
    start = time.perf_counter()
    for i in range(steps):
        j = (i * config.batch_size) % (len(y) - config.batch_size)
        rule.step(x[j : j + config.batch_size], y[j : j + config.batch_size], config.lr)
    sync()
    return (time.perf_counter() - start) / steps


def step_cost(rounds: int = 7, steps: int = 200, device: str = "cpu", variants: dict | None = None,
              hidden=PAPER_HIDDEN, batch: int = 32) -> dict[str, Any]:
    """Mean training-step time (sleep phases included) of each rule, and its median per-round ratio to bp."""
    variants = variants or STEP_VARIANTS
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(max(4096, 4 * batch), 784, generator=generator).to(device)
    y = torch.randint(0, 10, (len(x),), generator=generator).to(device)
    built = {name: _build(name, over, device, hidden, batch) for name, over in variants.items()}
    warm_steps = 50  # the first sleep phase (step 0), the allocator, the kernels
    for config, rule in built.values():
        _time_steps(config, rule, x, y, warm_steps)
    per_round: dict[str, list[float]] = {name: [] for name in built}
    for _ in range(rounds):
        for name, (config, rule) in built.items():
            per_round[name].append(_time_steps(config, rule, x, y, steps))
    return {
        "step_seconds_median": {n: statistics.median(v) for n, v in per_round.items()},
        "step_time_ratio_vs_bp": {
            n: statistics.median(t / b for t, b in zip(v, per_round["bp"])) for n, v in per_round.items()
        },
        "rounds": rounds, "steps_per_round": steps, "batch": batch, "hidden": list(hidden), "device": device,
    }


def scaling(device: str = "cpu", widths=(400, 1000, 2000, 4000), batches=(32, 128, 512, 1024),
            steps: int = 40, rounds: int = 3) -> dict[str, Any]:
    """Step time of bp and rf_two_phase (each refresh method) as the first hidden layer and the batch grow."""
    variants = {
        "bp": {},
        "rf_two_phase": {},
        "rf_two_phase[oracle_cholesky]": {"feedback": "oracle_cholesky"},
        "rf_two_phase[oracle_newton_schulz]": {"feedback": "oracle_newton_schulz"},
        "rf_two_phase[oracle_svd]": {"feedback": "oracle_svd"},
    }
    rows = []
    for width in widths:
        report = step_cost(rounds, steps, device, variants, (width, *PAPER_HIDDEN[1:]), 32)
        rows.append({"first_hidden": width, "batch": 32, **_row(report)})
    for batch in batches:
        report = step_cost(rounds, steps, device, variants, PAPER_HIDDEN, batch)
        rows.append({"first_hidden": PAPER_HIDDEN[0], "batch": batch, **_row(report)})
    return {"rows": rows, "device": device, "steps_per_round": steps, "rounds": rounds}


def _row(report: dict) -> dict[str, Any]:
    return {
        "step_ms": {n: round(s * 1e3, 4) for n, s in report["step_seconds_median"].items()},
        "ratio_vs_bp": {n: round(r, 3) for n, r in report["step_time_ratio_vs_bp"].items()},
    }


# ---- against the standard PyTorch recipe ------------------------------------------------------------


def _torchvision_root(data_dir: str) -> tuple[Path, Callable[[], None]]:
    """A torchvision FashionMNIST root made from the IDX files in `data_dir` (any layout rf_core reads)."""
    from rf_core.data import IDX_FILES, _idx_path, locate

    folder = locate("fashion_mnist", data_dir)
    root = Path(tempfile.mkdtemp(prefix="rfsweep-bench-"))
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in IDX_FILES.values():
        source = _idx_path(folder, stem)
        opener = gzip.open if source.suffix == ".gz" else open
        with opener(source, "rb") as src, open(raw / stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return root, lambda: shutil.rmtree(root, ignore_errors=True)


def _recipe_model(hidden, slope: float, init_gain: float, seed: int) -> torch.nn.Sequential:
    sizes = [784, *hidden, 10]
    layers: list[torch.nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = torch.nn.Linear(fan_in, fan_out, bias=False)
        layers.append(linear)
        if i < len(sizes) - 2:
            layers.append(torch.nn.LeakyReLU(slope))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():  # the same distribution as rf_core's MLP: U(±g/√fan_in)
        for layer in layers:
            if isinstance(layer, torch.nn.Linear):
                bound = init_gain / math.sqrt(layer.in_features)
                layer.weight.copy_((torch.rand(layer.weight.shape, generator=generator) * 2 - 1) * bound)
    return torch.nn.Sequential(*layers)


def torch_recipe(data_dir: str, epochs: int, lr: float, hidden=PAPER_HIDDEN, batch: int = 32, seed: int = 0,
                 on_epoch: Callable[[dict], None] | None = None) -> list[dict[str, float]]:
    """bp the way most users write it: torchvision dataset + DataLoader(shuffle) + nn.Sequential + autograd + SGD."""
    history = []
    for record in torch_recipe_epochs(data_dir, epochs, lr, hidden, batch, seed):
        history.append(record)
        if on_epoch:
            on_epoch(record)
    return history


def torch_recipe_epochs(data_dir: str, epochs: int, lr: float, hidden=PAPER_HIDDEN, batch: int = 32, seed: int = 0):
    """`torch_recipe` one epoch per `next()`, so that a comparison can interleave it with rf_core's epochs."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    defaults = TrainConfig(algorithm="bp", dataset="fashion_mnist")
    root, cleanup = _torchvision_root(data_dir)
    try:
        raw_train = datasets.FashionMNIST(str(root), train=True, download=False)
        mean = float(raw_train.data.float().div(255).mean())
        std = float(raw_train.data.float().div(255).std())
        transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((mean,), (std,))])
        train_set = datasets.FashionMNIST(str(root), train=True, download=False, transform=transform)
        test_set = datasets.FashionMNIST(str(root), train=False, download=False, transform=transform)
        torch.manual_seed(seed)
        loader = DataLoader(train_set, batch_size=batch, shuffle=True)
        test_loader = DataLoader(test_set, batch_size=1000)
        model = torch.nn.Sequential(torch.nn.Flatten(), _recipe_model(hidden, defaults.activation_slope, defaults.init_gain, seed))
        optimizer = torch.optim.SGD(model.parameters(), lr=lr)
        loss_fn = torch.nn.CrossEntropyLoss()
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            model.train()
            for images, labels in loader:
                optimizer.zero_grad()
                loss = loss_fn(model(images), labels)
                loss.backward()
                optimizer.step()
            seconds = time.perf_counter() - start
            model.eval()
            correct = 0
            with torch.no_grad():
                for images, labels in test_loader:
                    correct += int((model(images).argmax(1) == labels).sum())
            yield {"epoch": epoch, "seconds": seconds, "samples": len(train_set), "test_accuracy": correct / len(test_set)}
    finally:
        cleanup()


def ours(data_dir: str, epochs: int, lr: float, hidden=PAPER_HIDDEN, batch: int = 32, seed: int = 0,
         device: str = "cpu", on_epoch: Callable[[dict], None] | None = None) -> list[dict[str, float]]:
    """rf_core's bp on the same data, network, init distribution and learning rate (every training image)."""
    from rf_core.data import load_dataset
    from rf_core.train import train

    config = TrainConfig(algorithm="bp", dataset="fashion_mnist", data_dir=data_dir, epochs=epochs, lr=lr,
                         hidden=tuple(hidden), batch_size=batch, seed=seed, val_fraction=0.0, device=device,
                         diagnostics=False)
    samples = len(load_dataset("fashion_mnist", data_dir, val_fraction=0.0, seed=seed, device=device).y_train)
    rows = []

    def report(record, _get_state):
        rows.append({"epoch": record["epoch"], "seconds": record["seconds"], "samples": samples,
                     "test_accuracy": record["test_accuracy"]})
        if on_epoch:
            on_epoch(rows[-1])

    train(config, on_epoch=report)
    return rows


def bp_step_flops(hidden=PAPER_HIDDEN, batch: int = 32, inputs: int = 784, classes: int = 10) -> int:
    """Multiply-adds ×2 of one bp step: forward, weight gradients, and input gradients above layer 1."""
    sizes = [inputs, *hidden, classes]
    products = [a * b for a, b in zip(sizes[:-1], sizes[1:])]
    return 2 * batch * (2 * sum(products) + sum(products[1:]))


def matmul_gflops(hidden=PAPER_HIDDEN, batch: int = 32, inputs: int = 784, classes: int = 10,
                  repeats: int = 300, device: str = "cpu") -> float:
    """The machine's own throughput on exactly a bp step's matrix products (no framework around them)."""
    sizes = [inputs, *hidden, classes]
    weights = [torch.randn(b, a, device=device) for a, b in zip(sizes[:-1], sizes[1:])]
    acts = [torch.randn(batch, a, device=device) for a in sizes[:-1]]
    grads = [torch.randn(batch, b, device=device) for b in sizes[1:]]
    sync = _sync(device)

    def one_step():
        for l, (w, h, g) in enumerate(zip(weights, acts, grads)):
            h @ w.T  # forward
            g.T @ h  # weight gradient
            if l > 0:
                g @ w  # gradient to the layer below

    for _ in range(20):
        one_step()
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        one_step()
    sync()
    return bp_step_flops(hidden, batch, inputs, classes) * repeats / (time.perf_counter() - start) / 1e9


def recipe_comparison(data_dir: str, epochs: int = 5, lr: float | None = None, device: str = "cpu",
                      progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Epoch time and test accuracy of rf_core's bp against the standard recipe in this process, epochs
    interleaved (ours, recipe, ours, …) so that a machine that slows down mid-run slows both sides.

    Also the bound on the speed-up: the recipe's epoch against an epoch of nothing but bp's matrix products
    at the throughput this machine reaches on them alone (measured in the same run)."""
    lr = lr or TrainConfig(algorithm="bp", dataset="fashion_mnist").resolved().lr
    say = progress or (lambda _msg: None)
    say(f"rf_core bp and the standard recipe: {epochs} epochs each, interleaved")
    recipe_epochs = torch_recipe_epochs(data_dir, epochs, lr)
    recipe: list[dict[str, float]] = []

    def then_one_recipe_epoch(record: dict) -> None:
        say(f"  rf_core epoch {record['epoch']}: {record['seconds']:.2f} s")
        recipe.append(next(recipe_epochs))
        say(f"  recipe epoch {recipe[-1]['epoch']}: {recipe[-1]['seconds']:.2f} s")

    try:
        mine = ours(data_dir, epochs, lr, device=device, on_epoch=then_one_recipe_epoch)
    finally:
        recipe_epochs.close()
    recipe_epoch = statistics.median(r["seconds"] for r in recipe)
    our_epoch = statistics.median(r["seconds"] for r in mine)
    flops_per_epoch = bp_step_flops() * math.ceil(mine[-1]["samples"] / 32)
    peak = matmul_gflops(device=device)
    return {
        "lr": lr, "epochs": epochs,
        "recipe_epoch_seconds_median": recipe_epoch,
        "ours_epoch_seconds_median": our_epoch,
        "epoch_speedup_vs_torch_recipe": recipe_epoch / our_epoch,
        "epoch_speedup_per_pair_median": statistics.median(r["seconds"] / m["seconds"] for r, m in zip(recipe, mine)),
        "epoch_speedup_bound_from_matmuls": recipe_epoch / (flops_per_epoch / (peak * 1e9)),
        "recipe_test_accuracy": recipe[-1]["test_accuracy"],
        "ours_test_accuracy": mine[-1]["test_accuracy"],
        "accuracy_difference_points": 100 * (mine[-1]["test_accuracy"] - recipe[-1]["test_accuracy"]),
        "ours_gflops": flops_per_epoch / our_epoch / 1e9,
        "recipe_gflops": flops_per_epoch / recipe_epoch / 1e9,
        "matmul_gflops_same_shapes": peak,
        "recipe_history": recipe, "ours_history": mine,
    }
