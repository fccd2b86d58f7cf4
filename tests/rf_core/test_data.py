"""Dataset loaders read the real on-disk formats (generated here, small) and fail with a clear message."""

import gzip
import os
import pickle
import struct

import numpy as np
import pytest
import torch

from rf_core import TrainConfig, train
from rf_core.data import DatasetNotFound, UnsafeDatasetFile, load_dataset, read_idx


def write_idx(path, array: np.ndarray, gz: bool):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as fh:
            fh.write(payload)
    else:
        path.write_bytes(payload)


def make_idx_dataset(folder, n_train=60, n_test=20, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    labels_train = rng.integers(0, 10, n_train)
    labels_test = rng.integers(0, 10, n_test)

    # Each image lights the two rows that encode its label, so a model can learn them.
    def images_for(labels):
        images = rng.integers(0, 30, (len(labels), 28, 28))
        for i, label in enumerate(labels):
            images[i, 2 * label : 2 * label + 2, :] = 255
        return images.astype(np.uint8)

    images_train, images_test = images_for(labels_train), images_for(labels_test)
    write_idx(folder / "train-images-idx3-ubyte", images_train, gz)
    write_idx(folder / "train-labels-idx1-ubyte", labels_train, gz)
    write_idx(folder / "t10k-images-idx3-ubyte", images_test, gz)
    write_idx(folder / "t10k-labels-idx1-ubyte", labels_test, gz)
    return images_train, labels_train


@pytest.mark.parametrize("gz", [True, False])
def test_idx_reader_round_trips_shape_and_bytes(tmp_path, gz):
    images, _ = make_idx_dataset(tmp_path, gz=gz)
    suffix = ".gz" if gz else ""
    read = read_idx(tmp_path / f"train-images-idx3-ubyte{suffix}")
    assert read.shape == (60, 28, 28)
    assert torch.equal(read, torch.from_numpy(images))


def test_flat_debian_layout_and_torchvision_root_layout_both_load(tmp_path):
    make_idx_dataset(tmp_path / "flat", gz=True)
    make_idx_dataset(tmp_path / "root" / "FashionMNIST" / "raw", gz=False)
    flat = load_dataset("fashion_mnist", str(tmp_path / "flat"), val_fraction=0.1)
    rooted = load_dataset("fashion_mnist", str(tmp_path / "root"), val_fraction=0.1)
    for splits in (flat, rooted):
        assert splits.x_train.shape == (54, 784) and splits.x_val.shape == (6, 784)
        assert splits.x_test.shape == (20, 784) and splits.num_classes == 10
    assert torch.equal(flat.y_test, flat.y_test)


def test_missing_files_give_an_error_naming_the_expected_files(tmp_path):
    with pytest.raises(DatasetNotFound) as info:
        load_dataset("mnist", str(tmp_path))
    message = str(info.value)
    assert "train-images-idx3-ubyte" in message and "t10k-labels-idx1-ubyte" in message
    assert str(tmp_path / "MNIST" / "raw") in message


def test_cifar10_python_batches_load(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8), b"labels": list(rng.integers(0, 10, 10))}
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh)
    splits = load_dataset("cifar10", str(tmp_path), val_fraction=0.2)
    assert splits.x_train.shape == (40, 3072) and splits.x_val.shape == (10, 3072) and splits.x_test.shape == (10, 3072)


class _RunsACommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_cifar_pickle_is_refused_and_runs_nothing(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    marker = tmp_path / "pwned"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": _RunsACommand(marker), b"labels": [0]}, fh)
    with pytest.raises(UnsafeDatasetFile, match=r"posix\.system|os\.system"):
        load_dataset("cifar10", str(tmp_path))
    assert not marker.exists()


def test_validation_split_is_seeded_and_disjoint_from_training():
    a = load_dataset("digits", seed=1)
    b = load_dataset("digits", seed=1)
    c = load_dataset("digits", seed=2)
    assert torch.equal(a.y_val, b.y_val)
    assert not torch.equal(a.x_val, c.x_val)
    assert len(a.y_train) + len(a.y_val) == 1437


def test_training_on_generated_idx_files_runs_end_to_end(tmp_path):
    make_idx_dataset(tmp_path, n_train=200, n_test=50)
    result = train(TrainConfig(dataset="mnist", data_dir=str(tmp_path), epochs=10, hidden=(32,), lr=0.1))
    assert result.status == "completed" and result.test_accuracy > 0.5


def test_digits_are_scikit_learns_own_read_without_importing_sklearn_datasets(float64_default):
    """The bundled file read directly gives load_digits' arrays (same pixels /16, same labels) as float32 even
    under a float64 default dtype, and loading the dataset leaves sklearn.datasets unimported (1.5 s saved in
    every trial worker)."""
    import subprocess
    import sys

    from sklearn.datasets import load_digits

    from rf_core.data import read_bundled_digits

    x, y = read_bundled_digits()
    reference = load_digits()
    assert torch.equal(x, torch.as_tensor(reference.data, dtype=torch.float32) / 16.0)
    assert torch.equal(y, torch.as_tensor(reference.target, dtype=torch.long))
    assert x.dtype == torch.float32 and y.dtype == torch.long  # torch.equal does not compare dtypes
    probe = "import sys; from rf_core.data import load_dataset; load_dataset('digits'); print(*sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert "rf_core.data" in loaded and "sklearn.datasets" not in loaded
