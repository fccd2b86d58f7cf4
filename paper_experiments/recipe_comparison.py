"""rf_core's bp against the standard PyTorch recipe (torchvision dataset, DataLoader, nn.Sequential, autograd,
SGD) on the same Fashion-MNIST files, network, initialisation and learning rate: epoch time and test accuracy
(part of `rfsweep bench`; the figures are in docs/BENCHMARKS.md).

Both sides run in this process, their epochs interleaved, so that the noise of a shared machine hits both
sides of a ratio alike.
"""

from __future__ import annotations

import gzip
import itertools
import math
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

import torch

from rf_core import TrainConfig
from rf_core.bench import PAPER_HIDDEN, bp_step_flops, matmul_gflops


def _torchvision_root(data_dir: str) -> tuple[Path, Callable[[], None]]:
    """A torchvision FashionMNIST root made from the IDX files in `data_dir` (any layout rf_core reads)."""
    from rf_core.data import IDX_FILES, _idx_path, locate

    folder = locate("fashion_mnist", data_dir)
    root = Path(tempfile.mkdtemp(prefix="rfsweep-bench-"))
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for stem in IDX_FILES.values():
        source = _idx_path(folder, stem)
        assert source is not None, stem  # locate() found every file
        opener = gzip.open if source.suffix == ".gz" else open
        with opener(source, "rb") as src, open(raw / stem, "wb") as dst:
            shutil.copyfileobj(src, dst)
    return root, lambda: shutil.rmtree(root, ignore_errors=True)


def _recipe_model(hidden: Sequence[int], slope: float, init_gain: float, seed: int) -> torch.nn.Sequential:
    sizes = [784, *hidden, 10]
    layers: list[torch.nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
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


def torch_recipe(
    data_dir: str,
    epochs: int,
    lr: float,
    hidden: Sequence[int] = PAPER_HIDDEN,
    batch: int = 32,
    seed: int = 0,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """bp the way most users write it: torchvision dataset + DataLoader(shuffle) + nn.Sequential + autograd + SGD."""
    history = []
    for record in torch_recipe_epochs(data_dir, epochs, lr, hidden, batch, seed):
        history.append(record)
        if on_epoch:
            on_epoch(record)
    return history


def torch_recipe_epochs(
    data_dir: str, epochs: int, lr: float, hidden: Sequence[int] = PAPER_HIDDEN, batch: int = 32, seed: int = 0
) -> Generator[dict[str, float], None, None]:
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
        model = torch.nn.Sequential(
            torch.nn.Flatten(), _recipe_model(hidden, defaults.activation_slope, defaults.init_gain, seed)
        )
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
            yield {
                "epoch": epoch,
                "seconds": seconds,
                "samples": len(train_set),
                "test_accuracy": correct / len(test_set),
            }
    finally:
        cleanup()


def ours(
    data_dir: str,
    epochs: int,
    lr: float,
    hidden: Sequence[int] = PAPER_HIDDEN,
    batch: int = 32,
    seed: int = 0,
    device: str = "cpu",
    on_epoch: Callable[[dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """rf_core's bp on the same data, network, init distribution and learning rate (every training image)."""
    from rf_core.data import load_dataset
    from rf_core.train import train

    config = TrainConfig(
        algorithm="bp",
        dataset="fashion_mnist",
        data_dir=data_dir,
        epochs=epochs,
        lr=lr,
        hidden=tuple(hidden),
        batch_size=batch,
        seed=seed,
        val_fraction=0.0,
        device=device,
        diagnostics=False,
    )
    samples = len(load_dataset("fashion_mnist", data_dir, val_fraction=0.0, seed=seed, device=device).y_train)
    rows: list[dict[str, float]] = []

    def report(record: dict[str, Any], _get_state: Any) -> None:
        rows.append(
            {
                "epoch": record["epoch"],
                "seconds": record["seconds"],
                "samples": samples,
                "test_accuracy": record["test_accuracy"],
            }
        )
        if on_epoch:
            on_epoch(rows[-1])

    train(config, on_epoch=report)
    return rows


def recipe_comparison(
    data_dir: str,
    epochs: int = 5,
    lr: float | None = None,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Epoch time and test accuracy of rf_core's bp against the standard recipe in this process, epochs
    interleaved (ours, recipe, ours, …) so that a machine that slows down mid-run slows both sides.

    Also the bound on the speed-up: the recipe's epoch against an epoch of nothing but bp's matrix products
    at the throughput this machine reaches on them alone (measured in the same run)."""
    lr = lr or TrainConfig(algorithm="bp", dataset="fashion_mnist").resolved().lr
    assert lr is not None  # resolved() fills in the rule's default
    say = progress or (lambda _msg: None)
    say(f"rf_core bp and the standard recipe: {epochs} epochs each, interleaved")
    recipe_epochs = torch_recipe_epochs(data_dir, epochs, lr)
    recipe: list[dict[str, float]] = []

    def then_one_recipe_epoch(record: dict[str, float]) -> None:
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
        "lr": lr,
        "epochs": epochs,
        "recipe_epoch_seconds_median": recipe_epoch,
        "ours_epoch_seconds_median": our_epoch,
        "epoch_speedup_vs_torch_recipe": recipe_epoch / our_epoch,
        "epoch_speedup_per_pair_median": statistics.median(
            r["seconds"] / m["seconds"] for r, m in zip(recipe, mine, strict=True)
        ),
        "epoch_speedup_bound_from_matmuls": recipe_epoch / (flops_per_epoch / (peak * 1e9)),
        "recipe_test_accuracy": recipe[-1]["test_accuracy"],
        "ours_test_accuracy": mine[-1]["test_accuracy"],
        "accuracy_difference_points": 100 * (mine[-1]["test_accuracy"] - recipe[-1]["test_accuracy"]),
        "ours_gflops": flops_per_epoch / our_epoch / 1e9,
        "recipe_gflops": flops_per_epoch / recipe_epoch / 1e9,
        "matmul_gflops_same_shapes": peak,
        "recipe_history": recipe,
        "ours_history": mine,
    }
