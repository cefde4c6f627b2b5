"""Image datasets for pruning and training: CIFAR-10/100, Tiny-ImageNet (32×32) and a synthetic set.

Everything is read from a local directory in torchvision's layouts (no torchvision needed):

* CIFAR-10: ``DIR/cifar-10-batches-py/{data_batch_1..5,test_batch}`` (python pickles);
* CIFAR-100: ``DIR/cifar-100-python/{train,test}``;
* Tiny-ImageNet: ``DIR/tiny-imagenet-200/train/<wnid>/images/*.JPEG`` and
  ``val/val_annotations.txt`` + ``val/images/*.JPEG`` (or ``val/<wnid>/…`` class folders), every
  image resized to 32×32 with PIL's BOX filter as in the paper; the decoded arrays are cached next
  to the data (``mgedb-32x32-box.npz``) when the directory is writable.

``DIR`` may also be the dataset folder itself. Nothing is downloaded unless asked
(:func:`download_cifar`, CLI ``--download``). Images are kept as uint8 ``(N, 3, 32, 32)`` tensors;
:class:`BatchLoader` yields normalised float batches, with the paper's augmentation (random crop 32
with zero padding 4, horizontal flip) on the training split, shuffled by a seeded generator.
"""

from __future__ import annotations

import hashlib
import math
import pickle
import tarfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch

from mgedb.atomic import atomic_write
from mgedb.errors import DataError
from mgedb.vocab import Dataset

__all__ = [
    "DATASETS",
    "IMAGE_SHAPE",
    "BatchLoader",
    "ImageSet",
    "Loaders",
    "canonical_dataset",
    "check_input_shape",
    "download_cifar",
    "load_cifar",
    "load_tinyimagenet",
    "make_loaders",
    "synthetic",
]

#: name -> (classes, per-channel mean, per-channel std) — the paper's normalisation.
DATASETS: dict[str, tuple[int, tuple[float, float, float], tuple[float, float, float]]] = {
    Dataset.CIFAR10: (10, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    Dataset.CIFAR100: (100, (0.5071, 0.4867, 0.4408), (0.2675, 0.2565, 0.2761)),
    Dataset.TINYIMAGENET: (200, (0.4802, 0.4481, 0.3975), (0.2770, 0.2691, 0.2821)),
}
#: The shape of every image the dataset loaders give (Tiny-ImageNet resized, as in the paper).
IMAGE_SHAPE = (3, 32, 32)
_ALIASES = {"cifar-10": "cifar10", "cifar_10": "cifar10", "cifar-100": "cifar100",
            "cifar_100": "cifar100", "tiny-imagenet": "tinyimagenet",
            "tiny_imagenet": "tinyimagenet", "tiny-imagenet-200": "tinyimagenet"}

_CIFAR = {
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"],
                b"labels", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                "c58f30108f718f92721af3b95e74349a"),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels",
                 "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
                 "eb9058c3a382ffc7106e4002c42a8d85"),
}


@dataclass(frozen=True)
class ImageSet:
    """uint8 images ``(N, C, H, W)`` (3×32×32 but for synthetic sets) and int64 labels."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


class BatchLoader:
    """An iterable of ``(x, y)`` batches: normalised float32 images and int64 labels.

    Each iteration reshuffles (when ``shuffle``) and re-draws the augmentation from the loader's own
    generator, seeded once with ``seed``, so a sequence of epochs is reproducible.
    """

    def __init__(self, data: ImageSet, batch_size: int, *, shuffle: bool, augment: bool,
                 mean: tuple[float, ...], std: tuple[float, ...], seed: int = 0) -> None:
        if batch_size < 1:
            raise DataError(f"--batch-size must be ≥ 1, got {batch_size}")
        self.data = data
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.augment = augment
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.generator = torch.Generator().manual_seed(int(seed))

    def __len__(self) -> int:
        return math.ceil(len(self.data) / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.data)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            x = self.data.images[idx]
            if self.augment:
                x = _crop_flip(x, self.generator)
            x = (x.float() / 255.0 - self.mean) / self.std
            yield x, self.data.labels[idx]


def _crop_flip(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop with zero padding ``pad`` and random horizontal flip, per image (vectorised)."""
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    rows = (oy[:, None] + torch.arange(h))[:, :, None]  # (b, h, 1)
    cols = (ox[:, None] + torch.arange(w))[:, None, :]  # (b, 1, w)
    flip = torch.rand(b, generator=gen) < 0.5
    cols = torch.where(flip[:, None, None], cols.flip(-1), cols)
    out = padded[torch.arange(b)[:, None, None], :, rows, cols]  # (b, h, w, c)
    return out.permute(0, 3, 1, 2).contiguous()


class Loaders(NamedTuple):
    """Training and test loaders with the number of classes."""

    train: BatchLoader
    test: BatchLoader
    classes: int
    name: str


def canonical_dataset(name: str) -> str:
    """``cifar10`` / ``cifar100`` / ``tinyimagenet`` from any common spelling."""
    key = name.lower().strip()
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise DataError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return key


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and NumPy arrays only.

    The CIFAR "python version" files are pickles, and unpickling can run arbitrary code. These files
    only hold dicts, lists, bytes, ints and NumPy arrays, so every global other than NumPy's array
    reconstruction helpers is refused: a tampered file fails to load instead of running code.
    """

    _ALLOWED: ClassVar[set[tuple[str, str]]] = {
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    }

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("numpy.core"):  # files pickled with NumPy < 2
            module = "numpy._core" + module[len("numpy.core"):]
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        return super().find_class(module, name)


def _read_pickle(path: Path) -> dict[bytes, Any]:
    try:
        with open(path, "rb") as fh:
            obj = _NumpyOnlyUnpickler(fh, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise DataError(f"{path}: not a CIFAR python batch ({e})") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path}: not a CIFAR python batch (holds a {type(obj).__name__})")
    return obj


def _find(data_dir: Path, folder: str) -> Path | None:
    for cand in (data_dir / folder, data_dir):
        if cand.name == folder and cand.is_dir():
            return cand
    return None


def load_cifar(name: str, data_dir: str | Path) -> tuple[ImageSet, ImageSet]:
    """CIFAR-10 or CIFAR-100 (train, test) from torchvision's python-pickle layout."""
    key = canonical_dataset(name)
    folder, train_files, test_files, label_key, _url, _md5 = _CIFAR[key]
    root = _find(Path(data_dir), folder)
    expected = f"{Path(data_dir) / folder}/{{{','.join(train_files + test_files)}}}"
    if root is None or not all((root / f).is_file() for f in train_files + test_files):
        raise DataError(
            f"{name}: expected the python-version files at {expected} (torchvision layout); "
            "point --data-dir at their parent or add --download"
        )

    def read(files: list[str]) -> ImageSet:
        xs, ys = [], []
        for f in files:
            d = _read_pickle(root / f)
            if b"data" not in d or label_key not in d:
                raise DataError(f"{root / f}: missing b'data' or {label_key!r}")
            x = np.asarray(d[b"data"], dtype=np.uint8)
            y = np.asarray(d[label_key], dtype=np.int64)
            if x.ndim != 2 or x.shape[1] != 3072 or x.shape[0] != y.shape[0]:
                raise DataError(f"{root / f}: data of shape {x.shape}, expected (N, 3072) with "
                                f"{y.shape[0]} labels")
            xs.append(x.reshape(-1, 3, 32, 32))
            ys.append(y)
        return ImageSet(torch.from_numpy(np.concatenate(xs)), torch.from_numpy(np.concatenate(ys)))

    return read(train_files), read(test_files)


def download_cifar(name: str, data_dir: str | Path) -> Path:
    """Download and unpack CIFAR-10/100 into ``data_dir`` (checks the MD5; needs internet)."""
    key = canonical_dataset(name)
    if key not in _CIFAR:
        raise DataError(f"--download supports cifar10 and cifar100, not {name!r}")
    folder, *_, url, md5 = _CIFAR[key]
    root = Path(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    archive = root / url.rsplit("/", 1)[1]
    try:
        with atomic_write(archive) as fh:  # kept only when complete and its MD5 matches
            h = hashlib.md5()
            with urllib.request.urlopen(url) as response:
                while chunk := response.read(1 << 20):
                    h.update(chunk)
                    fh.write(chunk)
            if h.hexdigest() != md5:
                raise DataError(f"{url}: MD5 {h.hexdigest()} does not match {md5}; try again")
    except OSError as e:
        raise DataError(f"could not download {url} ({e}); fetch it by hand into {root}") from None
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(root, filter="data")
    return root / folder


def _pil_32(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((32, 32), Image.Resampling.BOX),
                          dtype=np.uint8).transpose(2, 0, 1)


def _stack(paths: list[Path], labels: list[int]) -> ImageSet:
    if not paths:
        return ImageSet(torch.zeros((0, 3, 32, 32), dtype=torch.uint8),
                        torch.zeros(0, dtype=torch.long))
    x = np.stack([_pil_32(p) for p in paths])
    return ImageSet(torch.from_numpy(x), torch.tensor(labels, dtype=torch.long))


def load_tinyimagenet(data_dir: str | Path, *, cache: bool = True) -> tuple[ImageSet, ImageSet]:
    """Tiny-ImageNet (train, val) resized to 32×32 with BOX interpolation."""
    given = Path(data_dir)
    root = _find(given, "tiny-imagenet-200")
    layout = (f"{given / 'tiny-imagenet-200'}/train/<wnid>/images/*.JPEG and "
              "val/val_annotations.txt with val/images/*.JPEG")
    if root is None or not (root / "train").is_dir() or not (root / "val").is_dir():
        raise DataError(f"tinyimagenet: expected {layout}; point --data-dir at the parent of "
                        "tiny-imagenet-200")
    cache_file = root / "mgedb-32x32-box.npz"
    if cache and cache_file.is_file():
        with np.load(cache_file) as z:
            return (ImageSet(torch.from_numpy(z["train_x"]), torch.from_numpy(z["train_y"])),
                    ImageSet(torch.from_numpy(z["val_x"]), torch.from_numpy(z["val_y"])))
    wnids = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    if not wnids:
        raise DataError(f"tinyimagenet: no class folders under {root / 'train'}; expected {layout}")
    index = {w: i for i, w in enumerate(wnids)}
    tr_paths: list[Path] = []
    tr_labels: list[int] = []
    for w in wnids:
        files = sorted((root / "train" / w).rglob("*.JPEG"))
        tr_paths += files
        tr_labels += [index[w]] * len(files)
    va_paths: list[Path] = []
    va_labels: list[int] = []
    ann = root / "val" / "val_annotations.txt"
    if ann.is_file():
        for line in ann.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) < 2:
                continue
            if parts[1] not in index:
                raise DataError(f"{ann}: class {parts[1]!r} has no folder under train/")
            img = root / "val" / "images" / parts[0]
            if not img.is_file():
                raise DataError(f"{ann}: listed image {img} is missing")
            va_paths.append(img)
            va_labels.append(index[parts[1]])
    else:
        for w in wnids:
            files = sorted((root / "val" / w).rglob("*.JPEG"))
            va_paths += files
            va_labels += [index[w]] * len(files)
    if not tr_paths or not va_paths:
        raise DataError(f"tinyimagenet: no JPEG images found under {root}; expected {layout}")
    train, val = _stack(tr_paths, tr_labels), _stack(va_paths, va_labels)
    if cache:
        try:
            with atomic_write(cache_file) as fh:
                np.savez(fh, train_x=train.images.numpy(), train_y=train.labels.numpy(),
                         val_x=val.images.numpy(), val_y=val.labels.numpy())
        except OSError:  # read-only data directory: no cache
            pass
    return train, val


def synthetic(classes: int = 10, n: int = 2000, *, seed: int = 0,
              shape: tuple[int, int, int] = IMAGE_SHAPE) -> ImageSet:
    """Class-conditional structured images of ``shape`` (default 3×32×32; learnable by a small
    conv net in a few epochs).

    Class ``c`` is an oriented sinusoidal grating (orientation ``π·frac(c·0.618…)``, one of three
    spatial frequencies per 32 pixels) tinted with a class hue (channel ``j`` of ``C`` at phase
    ``j/C``), plus a soft blob of the complementary tint; each sample draws a random phase, blob
    position, contrast and pixel noise from ``seed``. Labels are balanced (``c = i mod classes``)
    and shuffled.
    """
    if classes < 1 or n < 1:
        raise DataError(f"synthetic data needs classes ≥ 1 and n ≥ 1, got {classes}, {n}")
    ch, h, w = shape
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % classes)
    c = np.arange(classes)
    theta = np.pi * ((c * 0.6180339887) % 1.0)
    freq = np.array([2.0, 3.5, 5.0])[c % 3] * 2 * np.pi / 32
    hue = (c * 0.3819660113 + 0.05) % 1.0
    tint = 0.5 + 0.5 * np.cos(2 * np.pi * (hue[:, None] - np.arange(ch) / ch))  # (K, C)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    t, f, col = theta[labels], freq[labels], tint[labels]
    phase = rng.uniform(0, 2 * np.pi, n)
    proj = xx[None] * np.cos(t)[:, None, None] + yy[None] * np.sin(t)[:, None, None]
    wave = np.sin(f[:, None, None] * proj + phase[:, None, None])  # (n, H, W)
    centre = rng.uniform(8, 24, (n, 2)) * (np.array([w, h]) / 32)
    sigma = 5.0 * min(h, w) / 32
    blob = np.exp(-((xx[None] - centre[:, 0, None, None]) ** 2
                    + (yy[None] - centre[:, 1, None, None]) ** 2) / (2 * sigma ** 2))
    contrast = rng.uniform(0.25, 0.4, n)[:, None, None, None]
    img = (0.5 + contrast * wave[:, None] * (2 * col[:, :, None, None] - 1)
           + 0.25 * blob[:, None] * (0.5 - col[:, :, None, None])
           + rng.normal(0.0, 0.08, (n, ch, h, w)))
    x = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    return ImageSet(torch.from_numpy(x), torch.from_numpy(labels.astype(np.int64)))


def check_input_shape(dataset: str, shape: tuple[int, int, int], *, synthetic: bool) -> None:
    """One line when ``--input-shape`` is not the shape of the images ``dataset`` gives (the
    synthetic set is made at any shape)."""
    if synthetic or tuple(shape) == IMAGE_SHAPE:
        return
    key = canonical_dataset(dataset)
    given = ",".join(str(d) for d in shape)
    raise DataError(f"--input-shape {given}: {key} images are 3,32,32 here (Tiny-ImageNet is "
                    "resized to 32×32, as in the paper); give --input-shape 3,32,32, or use the "
                    "synthetic images, which follow --input-shape")


def make_loaders(dataset: str, data_dir: str | Path | None, batch_size: int = 128, *,
                 synthetic: bool = False, seed: int = 0, classes: int | None = None,
                 synthetic_size: tuple[int, int] = (2000, 500), download: bool = False,
                 test_batch_size: int | None = None, augment: bool = True,
                 input_shape: tuple[int, int, int] = IMAGE_SHAPE) -> Loaders:
    """Training loader (shuffled, augmented) and test loader for a dataset.

    With ``synthetic`` the data come from :func:`synthetic` at ``input_shape`` (``classes``
    defaults to the dataset's class count; ``data_dir`` is ignored); otherwise from ``data_dir``
    in torchvision's layout (3×32×32 images: another ``input_shape`` is refused).
    """
    key = canonical_dataset(dataset)
    check_input_shape(key, input_shape, synthetic=synthetic)
    n_classes, mean3, std3 = DATASETS[key]
    mean: tuple[float, ...] = mean3
    std: tuple[float, ...] = std3
    if synthetic:
        k = classes if classes is not None else n_classes
        train = _synthetic_set(k, synthetic_size[0], seed, input_shape)
        test = _synthetic_set(k, synthetic_size[1], seed + 1_000_003, input_shape)
        mean, std = ((0.5,) * input_shape[0], (0.25,) * input_shape[0])
        name = f"synthetic-{k}"
        n_classes = k
    else:
        if data_dir is None:
            raise DataError(f"{key}: give --data-dir DIR (torchvision layout) or use --synthetic")
        if key == "tinyimagenet":
            train, test = load_tinyimagenet(data_dir)
        else:
            if download and _find(Path(data_dir), _CIFAR[key][0]) is None:
                download_cifar(key, data_dir)
            train, test = load_cifar(key, data_dir)
        if classes is not None and classes != n_classes:
            raise DataError(f"{key} has {n_classes} classes, not --classes {classes}")
        if int(train.labels.max()) >= n_classes or int(train.labels.min()) < 0:
            raise DataError(f"{key}: labels outside 0..{n_classes - 1} in {data_dir}")
        name = key
    tb = test_batch_size or max(batch_size, 256)
    return Loaders(
        BatchLoader(train, batch_size, shuffle=True, augment=augment, mean=mean, std=std,
                    seed=seed),
        BatchLoader(test, tb, shuffle=False, augment=False, mean=mean, std=std, seed=seed),
        n_classes,
        name,
    )


def _synthetic_set(classes: int, n: int, seed: int,
                  shape: tuple[int, int, int] = IMAGE_SHAPE) -> ImageSet:
    return synthetic(classes, n, seed=seed, shape=shape)
