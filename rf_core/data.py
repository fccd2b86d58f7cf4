"""Datasets as tensors on the training device, loaded once per process and batched by index.

- mnist, fashion_mnist: IDX files, read here (no torchvision needed to read them). `data_dir` may be a
  flat folder of the four IDX files, gzipped or not (Debian's /usr/share/datasets/fashion-mnist), or a
  torchvision root (ROOT/MNIST/raw/…, ROOT/FashionMNIST/raw/…, what torchvision's own download leaves).
- cifar10: the python-pickle batches (ROOT/cifar-10-batches-py/ or that folder itself), read by an unpickler
  that admits only the arrays and lists the format holds (a crafted file cannot run code).
- digits: scikit-learn's bundled 8×8 digits, a fixed 80/20 train/test split.
- synthetic: labels from a fixed random teacher network; needs torch only.
A validation split (`val_fraction`, seeded) is carved from the training set for model selection; the test
set is only ever reported. `fetch_dataset` downloads through torchvision where the network allows.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import torch

Tensor = torch.Tensor

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
TORCHVISION_FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
FILE_DATASETS = ("mnist", "fashion_mnist", "cifar10")


class DatasetNotFound(FileNotFoundError):
    pass


@dataclass
class DatasetSplits:
    name: str
    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int

    @property
    def input_dim(self) -> int:
        return self.x_train.shape[1]


def default_data_dir() -> Path:
    env = os.environ.get("RFSWEEP_DATA_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rfsweep" / "data"


# ---- raw readers -------------------------------------------------------------------------------


def read_idx(path: Path) -> Tensor:
    """An IDX file (optionally gzipped) as a uint8 tensor of its declared shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        data = fh.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    payload = bytearray(data[4 + 4 * ndim :])
    expected = 1
    for s in shape:
        expected *= s
    if len(payload) != expected:
        raise ValueError(f"{path}: expected {expected} bytes of data for shape {shape}, found {len(payload)}")
    return torch.frombuffer(payload, dtype=torch.uint8).reshape(shape)


def _find_idx_folder(name: str, root: Path) -> Path | None:
    candidates = [root, root / TORCHVISION_FOLDERS[name] / "raw", root / "raw"]
    for folder in candidates:
        if all(_idx_path(folder, stem) is not None for stem in IDX_FILES.values()):
            return folder
    return None


def _idx_path(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _find_cifar_folder(root: Path) -> Path | None:
    for folder in (root / CIFAR_FOLDER, root):
        if all((folder / f).is_file() for f in CIFAR_FILES):
            return folder
    return None


def expected_files(name: str, root: Path) -> str:
    if name == "cifar10":
        return f"{root / CIFAR_FOLDER}/{{{','.join(CIFAR_FILES)}}}"
    stems = ", ".join(IDX_FILES.values())
    return f"the IDX files {stems} (optionally .gz) directly in {root} or in {root / TORCHVISION_FOLDERS[name] / 'raw'}"


def locate(name: str, data_dir: str | os.PathLike | None) -> Path:
    """The folder holding `name`'s files, or DatasetNotFound naming what is expected where."""
    root = Path(data_dir) if data_dir else default_data_dir()
    folder = _find_cifar_folder(root) if name == "cifar10" else _find_idx_folder(name, root)
    if folder is None:
        raise DatasetNotFound(
            f"dataset {name!r} not found: expected {expected_files(name, root)}. "
            f"Run `rfsweep data fetch {name} --data-dir {root}` where the network allows, or point --data-dir "
            f"(or RFSWEEP_DATA_DIR) at a folder with these files."
        )
    return folder


def fetch_dataset(name: str, data_dir: str | os.PathLike | None = None, download: bool = True) -> Path:
    """Make sure `name`'s files are on disk (downloading them through torchvision if allowed)."""
    root = Path(data_dir) if data_dir else default_data_dir()
    if name not in FILE_DATASETS:
        return root  # bundled or generated: nothing to fetch
    try:
        return locate(name, root)
    except DatasetNotFound:
        if not download:
            raise
    import torchvision.datasets as tvd  # lazy: only downloads need torchvision

    root.mkdir(parents=True, exist_ok=True)
    cls = {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}[name]
    for train in (True, False):
        cls(str(root), train=train, download=True)
    return locate(name, root)


# ---- datasets ----------------------------------------------------------------------------------


def _load_idx_dataset(name: str, data_dir: str | None) -> tuple[Tensor, Tensor, Tensor, Tensor, int]:
    folder = locate(name, data_dir)

    def load(key: str) -> Tensor:
        path = _idx_path(folder, IDX_FILES[key])
        if path is None:  # locate() found the folder by these very files
            raise DatasetNotFound(f"{name}: {IDX_FILES[key]} vanished from {folder}")
        return read_idx(path)

    x_train = load("train_images").reshape(-1, 28 * 28).float() / 255.0
    x_test = load("test_images").reshape(-1, 28 * 28).float() / 255.0
    return x_train, load("train_labels").long(), x_test, load("test_labels").long(), 10


class UnsafeDatasetFile(ValueError):
    """A dataset file asked to construct something its format never holds (a crafted pickle)."""


class _CifarUnpickler(pickle.Unpickler):
    """pickle.load calls any importable function a file names; this one admits only what CIFAR-10's python
    batches hold (dicts, lists, bytes, ints and numpy arrays of uint8), so a crafted file in `data_dir` cannot
    run code: it is refused with UnsafeDatasetFile."""

    ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def __init__(self, file: BinaryIO, path: Path) -> None:
        super().__init__(file, encoding="bytes")
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise UnsafeDatasetFile(f"{self.path}: not a CIFAR-10 batch (it asks to load {module}.{name}); refused")


def _load_cifar10(data_dir: str | None) -> tuple[Tensor, Tensor, Tensor, Tensor, int]:
    folder = locate("cifar10", data_dir)

    def load(file: str) -> tuple[Tensor, Tensor]:
        with open(folder / file, "rb") as fh:
            batch = _CifarUnpickler(fh, folder / file).load()
        data = batch[b"data"]
        x = torch.as_tensor(
            bytearray(data.tobytes()) if hasattr(data, "tobytes") else bytearray(data), dtype=torch.uint8
        )
        return x.reshape(-1, 3072).float() / 255.0, torch.as_tensor(list(batch[b"labels"]), dtype=torch.long)

    parts = [load(f) for f in CIFAR_FILES[:-1]]
    x_test, y_test = load("test_batch")
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]), x_test, y_test, 10


def _load_digits() -> tuple[Tensor, Tensor, Tensor, Tensor, int]:
    x, y = read_bundled_digits()
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))  # fixed split, whatever the seed
    x, y = x[order], y[order]
    n_train = int(0.8 * len(y))
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:], 10


def read_bundled_digits() -> tuple[Tensor, Tensor]:
    """scikit-learn's bundled digits (1,797 rows: 64 pixels 0..16, then the label) as float32 pixels / 16 and int64
    labels. The file is read directly, as `sklearn.datasets.load_digits` reads it, because importing
    `sklearn.datasets` costs 1.5 s in every process that loads the data (a sweep's every trial worker among them);
    where the file is not where scikit-learn keeps it, `load_digits` itself. tests/rf_core/test_data.py
    checks that both give the same tensors."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    if spec is None:
        raise ImportError("dataset digits: scikit-learn is not installed (it ships the digits file)")
    files = [Path(p) / "datasets" / "data" / "digits.csv.gz" for p in spec.submodule_search_locations or []]
    path = next((f for f in files if f.is_file()), None)
    if path is None:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x, y = torch.as_tensor(digits.data, dtype=torch.float32), torch.as_tensor(digits.target, dtype=torch.long)
        return x / 16.0, y
    with gzip.open(path, "rt") as fh:
        rows = torch.tensor([[float(v) for v in line.split(",")] for line in fh if line.strip()], dtype=torch.float32)
    return rows[:, :-1] / 16.0, rows[:, -1].long()


def _load_synthetic(
    n_train: int = 4000, n_test: int = 1000, dim: int = 20, classes: int = 5
) -> tuple[Tensor, Tensor, Tensor, Tensor, int]:
    g = torch.Generator().manual_seed(1234)  # a fixed teacher: the task does not depend on the run's seed
    w1 = torch.randn(dim, 32, generator=g, dtype=torch.float32) / dim**0.5
    w2 = torch.randn(32, classes, generator=g, dtype=torch.float32) / 32**0.5
    x = torch.randn(n_train + n_test, dim, generator=g, dtype=torch.float32)
    y = (torch.tanh(x @ w1) @ w2).argmax(1)
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:], classes


_CACHE: dict[tuple, DatasetSplits] = {}


def load_dataset(
    name: str,
    data_dir: str | None = None,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    device: str = "cpu",
    train_subset: int | None = None,
) -> DatasetSplits:
    """Standardised tensors on `device`; cached per process, so a worker reusing a dataset pays once."""
    key = (name, str(data_dir), val_fraction, seed, str(device), train_subset)
    if key in _CACHE:
        return _CACHE[key]
    if name in ("mnist", "fashion_mnist"):
        x_train, y_train, x_test, y_test, classes = _load_idx_dataset(name, data_dir)
    elif name == "cifar10":
        x_train, y_train, x_test, y_test, classes = _load_cifar10(data_dir)
    elif name == "digits":
        x_train, y_train, x_test, y_test, classes = _load_digits()
    elif name == "synthetic":
        x_train, y_train, x_test, y_test, classes = _load_synthetic()
    else:
        raise ValueError(f"dataset: unknown {name!r}")

    if train_subset is not None:
        x_train, y_train = x_train[:train_subset], y_train[:train_subset]
    order = torch.randperm(len(y_train), generator=torch.Generator().manual_seed(seed))
    n_val = round(val_fraction * len(y_train))
    val_idx, train_idx = order[:n_val], order[n_val:]
    # Standardise with training-split statistics only (one scalar mean/std: pixels share a scale).
    mean, std = x_train[train_idx].mean(), x_train[train_idx].std().clamp_min(1e-8)

    def prep(x: Tensor) -> Tensor:
        return ((x - mean) / std).to(device).contiguous()

    splits = DatasetSplits(
        name=name,
        x_train=prep(x_train[train_idx]),
        y_train=y_train[train_idx].to(device),
        x_val=prep(x_train[val_idx]),
        y_val=y_train[val_idx].to(device),
        x_test=prep(x_test),
        y_test=y_test.to(device),
        num_classes=classes,
    )
    _CACHE[key] = splits
    return splits
