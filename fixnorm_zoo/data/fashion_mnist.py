"""Fashion-MNIST from its IDX files, held in memory and augmented a whole batch at a time.

Why in memory: 60k 28x28 images are 47 MB, and per-image PIL transforms in Python would cost more than a small
model's training step on 2 CPU cores. Batches are cut from one tensor, augmented with batched tensor ops, and sharded
across processes by rank, so several processes see disjoint samples of the same epoch permutation.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from fixnorm_zoo.errors import DataError, DataNotFound

FASHION_MNIST_DIR = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _read_idx(path: Path) -> torch.Tensor:
    """Parse one IDX file (optionally gzipped): magic 0x0000 + dtype byte + ndim byte, then big-endian dims."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # a truncated or non-gzip .gz file
        raise DataError(
            f"{path} cannot be read ({type(e).__name__}: {e}): the file is damaged; reinstall it (sudo apt-get install "
            "--reinstall dataset-fashion-mnist) or point --data-dir at good copies"
        ) from e
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file (bad magic {raw[:4].hex()})")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = raw[4 + 4 * ndim :]
    expected = 1
    for d in dims:
        expected *= d
    if len(data) != expected:
        raise DataError(
            f"{path} holds {len(data)} bytes of data, its header says {dims} ({expected}): truncated?"
        )
    return torch.frombuffer(bytearray(data), dtype=torch.uint8).reshape(dims)


def _find(data_dir: Path, stem: str) -> Path:
    for name in (stem + ".gz", stem):
        if (data_dir / name).is_file():
            return data_dir / name
    raise DataNotFound(
        f"Fashion-MNIST file {stem}(.gz) not found in {data_dir}. Install Debian's package "
        "(sudo apt-get install dataset-fashion-mnist) or pass --data-dir / data_dir= pointing at the IDX files."
    )


def load_fashion_mnist(
    *, split: str, data_dir: str | Path | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as uint8 ``[N, 1, 28, 28]`` and labels as int64 ``[N]`` for ``split`` in ``{"train", "test"}``."""
    if split not in _FILES:
        raise DataError(f"split={split!r}: Fashion-MNIST has splits {sorted(_FILES)}")
    root = Path(data_dir) if data_dir is not None else FASHION_MNIST_DIR
    if not root.is_dir():
        raise DataNotFound(
            f"Fashion-MNIST directory {root} does not exist. Install it with 'sudo apt-get install "
            "dataset-fashion-mnist', or pass --data-dir pointing at the four IDX files."
        )
    images = _read_idx(_find(root, _FILES[split][0]))
    labels = _read_idx(_find(root, _FILES[split][1])).long()
    if images.shape[0] != labels.shape[0]:
        raise DataError(f"{root}: {images.shape[0]} images but {labels.shape[0]} labels in split {split!r}")
    if images.ndim != 3 or tuple(images.shape[1:]) != (28, 28):
        raise DataError(
            f"{root}: split {split!r} holds images of shape {tuple(images.shape[1:])}, not Fashion-MNIST's 28x28; "
            "point --data-dir at the Fashion-MNIST IDX files"
        )
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= len(FASHION_MNIST_CLASSES)):
        raise DataError(
            f"{root}: split {split!r} has labels {int(labels.min())}..{int(labels.max())}, outside Fashion-MNIST's "
            f"0..{len(FASHION_MNIST_CLASSES) - 1}; point --data-dir at the Fashion-MNIST IDX files"
        )
    return images.unsqueeze(1), labels


def fit_to_model(
    images: torch.Tensor, *, input_size: tuple[int, ...] | list[int], crop_pct: float, interpolation: str
) -> torch.Tensor:
    """28 px images resized to a model's ``input_size`` (``[1, H, W]``) exactly as its eval transform resizes them.

    Why: a model may take Fashion-MNIST upscaled (a stock stride-32 network leaves a 1x1 map at 28 px). The in-memory
    batches must be the very pixels timm's pipeline (``resize``, then ``center_crop`` at ``crop_pct`` 1.0) gives a
    user's 28 px PIL image, so a published number is the number ``fixnorm-zoo eval`` and timm's ``validate.py``
    measure: each image goes through PIL's own resize, once, before training (uint8 kept).

    Raises:
        DataError: more than one channel, or a resize other than a plain one (``crop_pct`` 1.0, a square size).
    """
    size = tuple(int(v) for v in input_size)
    if size[0] != 1:
        raise DataError(
            f"Fashion-MNIST images are grayscale (1 channel); the model takes input_size {list(size)}"
        )
    if size[1:] == tuple(images.shape[-2:]):
        return images
    if crop_pct != 1.0 or size[1] != size[2]:
        raise DataError(
            f"Fashion-MNIST resized to input_size {list(size)} with crop_pct {crop_pct}: only a square size at "
            "crop_pct 1.0 (a plain resize, as timm's eval transform does it) is supported"
        )
    from PIL import Image

    resample = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}[interpolation]
    flat = images.reshape(-1, *images.shape[-2:]).numpy()
    out = torch.empty((flat.shape[0], size[1], size[2]), dtype=torch.uint8)
    for i, image in enumerate(flat):
        resized = Image.fromarray(image, mode="L").resize((size[2], size[1]), resample)
        out[i] = torch.frombuffer(bytearray(resized.tobytes()), dtype=torch.uint8).view(size[1], size[2])
    return out.view(*images.shape[:-2], size[1], size[2])


@dataclass
class BatchAugment:
    """Batched train-time augmentation on uint8 images: random crop after zero padding, horizontal flip.

    Random erasing (timm's batched ``RandomErasing``) runs after normalization in :class:`InMemoryLoader`.
    """

    pad: int = 2
    hflip: float = 0.5

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        b, c, h, w = x.shape
        if self.pad > 0:
            padded = torch.nn.functional.pad(x, (self.pad,) * 4)
            oy = torch.randint(0, 2 * self.pad + 1, (b,), generator=g)
            ox = torch.randint(0, 2 * self.pad + 1, (b,), generator=g)
            rows = (oy[:, None] + torch.arange(h))[:, None, :, None]  # [b,1,h,1]
            cols = (ox[:, None] + torch.arange(w))[:, None, None, :]  # [b,1,1,w]
            x = padded[torch.arange(b)[:, None, None, None], torch.arange(c)[None, :, None, None], rows, cols]
        if self.hflip > 0:
            flip = torch.rand(b, generator=g) < self.hflip
            x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        return x

    def skip(self, b: int, g: torch.Generator) -> None:
        """Draw what :meth:`__call__` draws for a batch of ``b``, without touching images: a resumed epoch's
        skipped batches leave ``g`` where the uninterrupted epoch had it."""
        if self.pad > 0:
            torch.randint(0, 2 * self.pad + 1, (b,), generator=g)
            torch.randint(0, 2 * self.pad + 1, (b,), generator=g)
        if self.hflip > 0:
            torch.rand(b, generator=g)


class InMemoryLoader:
    """Iterate ``(images, labels)`` float batches from in-memory uint8 tensors.

    Every process builds the same permutation from ``(seed, epoch)`` and takes the batches of its rank, so an epoch
    is split disjointly over ``world_size`` processes and resuming at an epoch boundary is exact.

    Args:
        images: uint8 ``[N, C, H, W]``.
        labels: int64 ``[N]``.
        batch_size: per-process batch size.
        mean, std: per-channel normalization on the 0-1 scale (the model's pretrained_cfg values).
        train: shuffle, drop the last partial batch, augment. Eval keeps order and every sample.
        augment: batched augmentation for training (None: none).
        random_erasing: probability of timm's batched random erasing (train only).
        alternate_flip: flip a fixed random half of the images in even epochs and the other half in odd ones
            (airbench's alternating flip: every two epochs see both views of each image); the augment's own
            random flip should then be off.
        seed: base seed for shuffling and augmentation.
        rank, world_size: this process's share.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        train: bool,
        augment: BatchAugment | None = None,
        random_erasing: float = 0.0,
        alternate_flip: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.images, self.labels = images, labels
        self.batch_size, self.train, self.augment = batch_size, train, augment
        self.mean = torch.tensor(mean).view(1, -1, 1, 1) * 255.0
        self.std = torch.tensor(std).view(1, -1, 1, 1) * 255.0
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0
        self.start = 0  # batches of this epoch to skip on the next pass (a mid-epoch resume)
        self.erase = None
        self.flip_half = None
        if train and alternate_flip:  # one draw per run, from its own generator: the same half every epoch
            g = torch.Generator().manual_seed(self.seed * 104_729 + 1)
            self.flip_half = torch.rand(len(labels), generator=g) < 0.5
        if train and random_erasing > 0:
            from timm.data.random_erasing import RandomErasing

            self.erase = RandomErasing(probability=random_erasing, mode="pixel", device="cpu")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def first_images(self, count: int) -> torch.Tensor:
        """The first ``count`` images in storage order, normalized as batches are, unaugmented: the same on every
        process and every run (what a data-dependent init such as ``whiten_stem`` reads)."""
        return (self.images[:count].float() - self.mean) / self.std

    def skip_first(self, batches: int) -> None:
        """Start the next pass after its first ``batches`` batches: the same remaining batches, augmented the same
        way, as the uninterrupted epoch (random erasing draws from the global RNG, which the checkpoint restores)."""
        self.start = batches

    def _indices(self) -> torch.Tensor:
        n = len(self.labels)
        if self.train:
            order = torch.randperm(
                n, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            )
            per_step = self.batch_size * self.world_size
            order = order[: n // per_step * per_step]  # drop_last over the global batch
            return order.view(-1, self.world_size, self.batch_size)[:, self.rank].reshape(-1)
        shard = (
            n + self.world_size - 1
        ) // self.world_size  # eval: a contiguous shard each, none counted twice
        return torch.arange(self.rank * shard, min(n, (self.rank + 1) * shard))

    def __len__(self) -> int:
        return (len(self._indices()) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        idx = self._indices()
        g = torch.Generator().manual_seed((self.seed * 7919 + self.epoch) * 131 + self.rank)
        skip, self.start = self.start, 0
        for i, start in enumerate(range(0, len(idx), self.batch_size)):
            b = idx[start : start + self.batch_size]
            if i < skip:
                if self.train and self.augment is not None:
                    self.augment.skip(len(b), g)
                continue
            x = self.images[b]
            if self.train and self.augment is not None:
                x = self.augment(x, g)
            if self.flip_half is not None:
                flip = self.flip_half[b] ^ bool(self.epoch % 2)
                x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            x = (x.float() - self.mean) / self.std
            if self.erase is not None:
                x = self.erase(x)
            yield x, self.labels[b]
