"""ImageNet-style data: a local ImageFolder (``train/`` and ``val/`` class folders) or a Hugging Face dataset, with
timm's train and eval transforms built from the recipe.

``data_dir`` forms:
    /path/to/imagenet          a folder with train/ and val/ (one sub-folder per class, sorted names = class ids)
    hf:ILSVRC/imagenet-1k      the gated Hub dataset (log in first: ``huggingface-cli login``), decoded lazily
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fixnorm_zoo.errors import DataError

if TYPE_CHECKING:
    from torch.utils.data import DataLoader

    from fixnorm_zoo.recipe import Recipe

HF_PREFIX = "hf:"


def build_transforms(recipe: Recipe) -> tuple[Any, Any]:
    """timm's train transform (RandomResizedCrop, flip, RandAugment/AutoAugment, random erasing) and eval transform
    (resize to size/crop_pct, center crop), both from the recipe alone."""
    from timm.data import create_transform

    common = dict(input_size=tuple(recipe.input_size), interpolation=recipe.interpolation,
                  mean=tuple(recipe.mean), std=tuple(recipe.std))  # fmt: skip
    train = create_transform(is_training=True, auto_augment=recipe.auto_augment, re_prob=recipe.reprob,
                             hflip=recipe.hflip, **common)  # fmt: skip
    evaluation = create_transform(is_training=False, crop_pct=recipe.crop_pct, crop_mode="center", **common)
    return train, evaluation


class _HFImages:
    """A map-style view of a Hugging Face image dataset: decode and transform one row at a time."""

    def __init__(self, dataset: Any, transform: Any, image_key: str, label_key: str) -> None:
        self.dataset, self.transform, self.image_key, self.label_key = (
            dataset,
            transform,
            image_key,
            label_key,
        )

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        row = self.dataset[i]
        return self.transform(row[self.image_key].convert("RGB")), int(row[self.label_key])


def open_image(path: str, mode: str):
    """Decode one image file into ``mode`` ("RGB" or "L"), closing the file at once."""
    from PIL import Image

    with open(path, "rb") as f, Image.open(f) as im:
        return im.convert(mode)


def _folder_datasets(root: Path, train_tf: Any, eval_tf: Any, channels: int):
    from torchvision.datasets import ImageFolder

    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise DataError(f"ImageNet folder {root} has no {split}/ directory; expected {root}/train/<class>/*.JPEG "
                            f"and {root}/val/<class>/*.JPEG")  # fmt: skip
    mode = "L" if channels == 1 else "RGB"

    def load(path: str):
        return open_image(path, mode)

    train = ImageFolder(str(root / "train"), transform=train_tf, loader=load)
    val = ImageFolder(str(root / "val"), transform=eval_tf, loader=load)
    if train.classes != val.classes:
        raise DataError(
            f"{root}: train/ and val/ hold different class folders ({len(train.classes)} vs {len(val.classes)})"
        )
    return train, val, len(train.classes)


def _hub_datasets(name: str, train_tf: Any, eval_tf: Any):
    from datasets import load_dataset

    ds = load_dataset(name)
    label_key = "label"
    image_key = "image"
    num_classes = ds["train"].features[label_key].num_classes
    return (_HFImages(ds["train"], train_tf, image_key, label_key),
            _HFImages(ds["validation"], eval_tf, image_key, label_key), num_classes)  # fmt: skip


def build_imagenet_loaders(recipe: Recipe, *, per_process_batch: int) -> tuple[DataLoader, DataLoader]:
    """Train and eval DataLoaders (pass them through ``accelerator.prepare`` to shard them over processes).

    Raises:
        DataError: no data_dir, a missing split, or a class count that differs from the recipe's num_classes.
    """
    import torch

    if not recipe.data_dir:
        raise DataError("ImageNet recipes need data_dir: a folder with train/ and val/, or hf:ILSVRC/imagenet-1k "
                        "(pass --data-dir or --set data_dir=...)")  # fmt: skip
    train_tf, eval_tf = build_transforms(recipe)
    if recipe.data_dir.startswith(HF_PREFIX):
        train, val, n = _hub_datasets(recipe.data_dir[len(HF_PREFIX) :], train_tf, eval_tf)
    else:
        root = Path(recipe.data_dir)
        if not root.is_dir():
            raise DataError(f"ImageNet data_dir {root} does not exist")
        train, val, n = _folder_datasets(root, train_tf, eval_tf, recipe.in_chans)
    if n != recipe.num_classes:
        raise DataError(f"the dataset at {recipe.data_dir} has {n} classes but the recipe's model has "
                        f"num_classes={recipe.num_classes}; pass --set num_classes={n} to train a new head")  # fmt: skip
    common = dict(num_workers=recipe.workers, pin_memory=torch.cuda.is_available(),
                  persistent_workers=recipe.workers > 0)  # fmt: skip
    train_loader = torch.utils.data.DataLoader(train, batch_size=per_process_batch, shuffle=True, drop_last=True,
                                               **common)  # fmt: skip
    eval_loader = torch.utils.data.DataLoader(val, batch_size=per_process_batch, shuffle=False, **common)
    return train_loader, eval_loader
