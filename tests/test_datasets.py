"""Dataset loaders on fake CIFAR pickles and Tiny-ImageNet folders; synthetic data; batching."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mgedb.datasets import (
    BatchLoader,
    ImageSet,
    _crop_flip,
    canonical_dataset,
    load_cifar,
    load_tinyimagenet,
    make_loaders,
    synthetic,
)
from mgedb.errors import DataError


def write_cifar10(root: Path, per_batch: int = 4, protocol: int = 4
                  ) -> dict[str, tuple[np.ndarray, list[int]]]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    written = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        labels = [(i + j) % 10 for j in range(per_batch)]
        with open(folder / name, "wb") as fh:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data,
                         b"filenames": [b"x.png"] * per_batch}, fh, protocol=protocol)
        written[name] = (data, labels)
    return written


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar10_pickles_read_in_channel_plane_order(tmp_path: Path, protocol: int) -> None:
    written = write_cifar10(tmp_path, protocol=protocol)
    train, test = load_cifar("cifar10", tmp_path)
    assert train.images.shape == (20, 3, 32, 32) and train.images.dtype == torch.uint8
    assert test.images.shape == (4, 3, 32, 32)
    data, labels = written["data_batch_2"]
    # a CIFAR row is the red plane (1024 values, row-major), then green, then blue
    img = train.images[4 + 1]
    assert img[0, 0, 5] == data[1, 5] and img[1, 0, 0] == data[1, 1024]
    assert img[2, 31, 31] == data[1, 3071] and img[0, 2, 3] == data[1, 2 * 32 + 3]
    assert train.labels[4:8].tolist() == labels
    assert test.labels.tolist() == written["test_batch"][1]
    # the folder itself is accepted too
    train2, _ = load_cifar("CIFAR-10", tmp_path / "cifar-10-batches-py")
    assert torch.equal(train2.images, train.images)


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    data = np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072)
    for name, fine in (("train", [42, 99]), ("test", [7, 0])):
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": data, b"fine_labels": fine, b"coarse_labels": [1, 2]}, fh)
    train, test = load_cifar("cifar100", tmp_path)
    assert train.labels.tolist() == [42, 99] and test.labels.tolist() == [7, 0]
    assert int(train.images[1, 0, 0, 0]) == 3072 % 256


class Evil:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("owned",))


def test_pickles_with_foreign_globals_are_refused(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    with open(tmp_path / "cifar-10-batches-py" / "test_batch", "wb") as fh:
        pickle.dump({b"data": Evil(), b"labels": [0]}, fh)
    with pytest.raises(DataError, match=r"refusing to load global builtins\.print"):
        load_cifar("cifar10", tmp_path)


def test_missing_directories_name_the_expected_layout(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"cifar-10-batches-py/\{data_batch_1"):
        load_cifar("cifar10", tmp_path)
    with pytest.raises(DataError, match="cifar-100-python"):
        load_cifar("cifar100", tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"tiny-imagenet-200/train/<wnid>/images/\*\.JPEG"):
        load_tinyimagenet(tmp_path)
    with pytest.raises(DataError, match="--data-dir"):
        make_loaders("cifar10", None)
    with pytest.raises(DataError, match="unknown dataset"):
        canonical_dataset("mnist")


def write_tiny(root: Path) -> None:
    base = root / "tiny-imagenet-200"
    colours = {"n01": (250, 10, 10), "n02": (10, 10, 250)}
    for k, (wnid, colour) in enumerate(colours.items()):
        d = base / "train" / wnid / "images"
        d.mkdir(parents=True)
        for i in range(3):
            arr = np.zeros((64, 64, 3), np.uint8)
            arr[:, :32] = colour  # left half coloured, right half black
            Image.fromarray(arr).save(d / f"{wnid}_{i}.JPEG", quality=95)
        (base / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        del k
    (base / "val" / "images").mkdir(parents=True)
    lines = []
    for i, wnid in enumerate(["n02", "n01", "n02"]):
        arr = np.full((64, 64, 3), colours[wnid], np.uint8)
        Image.fromarray(arr).convert("L").save(base / "val" / "images" / f"val_{i}.JPEG")
        lines.append(f"val_{i}.JPEG\t{wnid}\t0\t0\t10\t10")
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")


def test_tinyimagenet_folders_resized_box_and_cached(tmp_path: Path) -> None:
    write_tiny(tmp_path)
    train, val = load_tinyimagenet(tmp_path)
    assert train.images.shape == (6, 3, 32, 32) and val.images.shape == (3, 3, 32, 32)
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert val.labels.tolist() == [1, 0, 1]
    # BOX halves the 64×64 image: columns 0..15 come from the coloured half, 16..31 from black
    left = train.images[0, :, :, :15].float().mean((1, 2))
    right = train.images[0, :, :, 17:].float().mean((1, 2))
    assert left[0] > 230 and left[2] < 30 and float(right.max()) < 15
    assert int(train.images[3, 2, 5, 5]) > 230
    # grayscale JPEGs come back as three equal channels
    assert torch.equal(val.images[0, 0], val.images[0, 1])
    cache = tmp_path / "tiny-imagenet-200" / "mgedb-32x32-box.npz"
    assert cache.is_file()
    train2, val2 = load_tinyimagenet(tmp_path)
    assert torch.equal(train2.images, train.images) and torch.equal(val2.labels, val.labels)


def test_tinyimagenet_annotation_naming_a_missing_image(tmp_path: Path) -> None:
    write_tiny(tmp_path)
    (tmp_path / "tiny-imagenet-200" / "val" / "images" / "val_1.JPEG").unlink()
    with pytest.raises(DataError, match=r"val_1\.JPEG is missing"):
        load_tinyimagenet(tmp_path, cache=False)


def test_synthetic_is_seeded_balanced_and_class_structured() -> None:
    a, b, c = synthetic(10, 200, seed=0), synthetic(10, 200, seed=0), synthetic(10, 200, seed=1)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)
    assert a.images.shape == (200, 3, 32, 32) and a.images.dtype == torch.uint8
    assert torch.bincount(a.labels).tolist() == [20] * 10
    # class means differ far more between classes than within a class (the signal is there)
    means = torch.stack([a.images[a.labels == k].float().mean(0) for k in range(10)])
    between = torch.cdist(means.flatten(1), means.flatten(1))
    assert float(between[~torch.eye(10, dtype=torch.bool)].min()) > 1.0


def test_crop_flip_is_a_window_of_the_zero_padded_image() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 256, (6, 3, 10, 10), generator=g, dtype=torch.uint8)
    out = _crop_flip(x, torch.Generator().manual_seed(3))
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(6):
        windows = [padded[i, :, r:r + 10, c:c + 10] for r in range(9) for c in range(9)]
        windows += [w.flip(-1) for w in windows]
        assert any(torch.equal(out[i], w) for w in windows)


def test_loaders_normalise_shuffle_and_cover_each_sample_once() -> None:
    data = ImageSet(torch.arange(10, dtype=torch.uint8).view(10, 1, 1, 1).expand(10, 3, 4, 4)
                    .contiguous(), torch.arange(10))
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.5, 0.25)
    loader = BatchLoader(data, 4, shuffle=True, augment=False, mean=mean, std=std, seed=0)
    assert len(loader) == 3
    ys = torch.cat([y for _, y in loader])
    assert sorted(ys.tolist()) == list(range(10)) and ys.tolist() != list(range(10))
    x, _ = next(iter(BatchLoader(data, 10, shuffle=False, augment=False, mean=mean, std=std)))
    assert torch.allclose(x[7, 2], torch.full((4, 4), (7 / 255 - 0.3) / 0.25))
    epoch1 = [y.tolist() for _, y in BatchLoader(data, 4, shuffle=True, augment=False, mean=mean,
                                                   std=std, seed=5)]
    epoch1_again = [y.tolist() for _, y in BatchLoader(data, 4, shuffle=True, augment=False,
                                                         mean=mean, std=std, seed=5)]
    assert epoch1 == epoch1_again


def test_make_loaders_synthetic_and_from_fake_cifar(tmp_path: Path) -> None:
    loaders = make_loaders("cifar100", None, 16, synthetic=True, seed=0, classes=7,
                           synthetic_size=(50, 20))
    assert loaders.classes == 7 and loaders.name == "synthetic-7"
    x, y = next(iter(loaders.train))
    assert x.shape == (16, 3, 32, 32) and x.dtype == torch.float32 and int(y.max()) < 7
    write_cifar10(tmp_path)
    real = make_loaders("cifar10", tmp_path, 8, seed=0)
    assert real.classes == 10 and sum(int(y.numel()) for _, y in real.test) == 4
    with pytest.raises(DataError, match="has 10 classes"):
        make_loaders("cifar10", tmp_path, 8, classes=100)
