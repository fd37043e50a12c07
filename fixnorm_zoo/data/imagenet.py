"""ImageNet-style data: a local ImageFolder (``train/`` and ``val/`` class folders) or a Hugging Face dataset, with
timm's train and eval transforms built from the recipe.

``data_dir`` forms:
    /path/to/imagenet          a folder with train/ and val/ (one sub-folder per class, sorted names = class ids)
    hf:ILSVRC/imagenet-1k      the gated Hub dataset (log in first: ``hf auth login``), decoded lazily
    hf:imagefolder:/path       a local folder read through ``datasets`` (its imagefolder builder)

With ``hf_streaming: true`` (clusters: no full download first) the Hub dataset is streamed, each process takes its
own part with ``datasets.distributed.split_dataset_by_node`` (so nothing is prepared by accelerate a second time),
the shuffle buffer is re-seeded every epoch, and every process runs the same number of steps per epoch (from the
split's size in the dataset info), so all-reduces never wait on a rank that ran out of data.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fixnorm_zoo.errors import DataError, DataNotFound

if TYPE_CHECKING:
    from torch.utils.data import DataLoader

    from fixnorm_zoo.recipe import Recipe

HF_PREFIX = "hf:"


def build_transforms(recipe: Recipe) -> tuple[Any, Any]:
    """timm's train transform (RandomResizedCrop, flip, RandAugment/AutoAugment, random erasing) and eval transform
    (resize to size/crop_pct, center crop), both from the recipe alone."""
    from timm.data import create_transform

    from fixnorm_zoo.data.transforms import eval_config, eval_transform

    common = dict(
        input_size=tuple(recipe.input_size),
        interpolation=recipe.interpolation,
        mean=tuple(recipe.mean),
        std=tuple(recipe.std),
    )
    train = create_transform(
        is_training=True,
        auto_augment=recipe.auto_augment,
        re_prob=recipe.reprob,
        hflip=recipe.hflip,
        **common,
    )
    return train, eval_transform(eval_config(recipe))


class _HFImages:
    """A map-style view of a Hugging Face image dataset: decode and transform one row at a time."""

    def __init__(
        self, dataset: Any, transform: Any, image_key: str, label_key: str, mode: str = "RGB"
    ) -> None:
        self.dataset, self.transform, self.image_key, self.label_key = (
            dataset,
            transform,
            image_key,
            label_key,
        )
        self.mode = mode

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        row = self.dataset[i]
        return self.transform(row[self.image_key].convert(self.mode)), int(row[self.label_key])


def open_image(path: str, mode: str):
    """Decode one image file into ``mode`` ("RGB" or "L"), closing the file at once."""
    from PIL import Image

    try:
        with open(path, "rb") as f, Image.open(f) as im:
            return im.convert(mode)
    except OSError as e:  # PIL's UnidentifiedImageError and truncated-file errors are OSErrors
        raise DataError(f"image {path} cannot be decoded ({e}): remove or replace the file") from e


def _folder_datasets(root: Path, train_tf: Any, eval_tf: Any, channels: int):
    from torchvision.datasets import ImageFolder

    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise DataNotFound(
                f"ImageNet folder {root} has no {split}/ directory; expected {root}/train/<class>/*.JPEG "
                f"and {root}/val/<class>/*.JPEG"
            )
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


SHARD_FORMATS = {"webdataset": "tar", "parquet": "parquet"}
"""``hf:webdataset:DIR`` (shards as timm/imagenet-1k-wds: ``imagenet1k-train-0000.tar``, samples ``jpg`` + ``cls``) and
``hf:parquet:DIR`` (shards as the Hub's imagenet-1k: ``data/train-00000-of-00294.parquet``, columns ``image`` +
``label``): a split's shards are the files whose name holds the split's name."""
IMAGE_KEYS = ("image", "jpg", "jpeg", "png", "webp")
LABEL_KEYS = ("label", "cls")


def _shard_files(folder: Path, builder: str) -> dict[str, list[str]]:
    ext = SHARD_FORMATS[builder]
    files = {}
    for split, names in (("train", ("train",)), ("validation", ("validation", "val"))):
        found = sorted({str(p) for n in names for p in folder.rglob(f"*{n}*.{ext}")})
        if not found:
            raise DataNotFound(
                f"--data-dir hf:{builder}:{folder}: no {split} shards (*{names[0]}*.{ext}) there: lay them out as "
                f"{'timm/imagenet-1k-wds' if builder == 'webdataset' else 'the Hub imagenet-1k data/ folder'}"
            )
        files[split] = found
    return files


def image_and_label_keys(features: Any, *, where: str) -> tuple[str, str]:
    """The image and label columns of a dataset: ``image``/``label`` (parquet, imagefolder) or ``jpg``/``cls``
    (webdataset)."""
    image = next((k for k in IMAGE_KEYS if k in features), None)
    label = next((k for k in LABEL_KEYS if k in features), None)
    if image is None or label is None:
        raise DataError(
            f"{where}: no image or label column among {sorted(features)}: expected one of {IMAGE_KEYS} and one of "
            f"{LABEL_KEYS}"
        )
    return image, label


def _num_classes(feature: Any) -> int | None:
    """A ClassLabel's class count; None for a plain integer column (webdataset ``cls``): the recipe's count holds."""
    return getattr(feature, "num_classes", None)


def _load_hf(spec: str, **kwargs):
    """``datasets.load_dataset`` of an ``hf:`` data_dir; what goes wrong there (offline without a cached copy, a
    gated dataset without a login, a misspelt name) is the user's to fix: one DataError saying how."""
    from datasets import load_dataset

    try:
        builder, sep, folder = spec.partition(":")
        if sep and builder == "imagefolder":
            return load_dataset("imagefolder", data_dir=folder, **kwargs)
        if sep and builder in SHARD_FORMATS:
            return load_dataset(builder, data_files=_shard_files(Path(folder), builder), **kwargs)
        return load_dataset(spec, **kwargs)
    except (
        OSError,
        ValueError,
    ) as e:  # ConnectionError, DatasetNotFoundError (a FileNotFoundError), gated access
        first = " ".join(str(e).split())[:300]
        import datasets.config

        offline = bool(
            datasets.config.HF_HUB_OFFLINE
        )  # datasets' own reading of HF_HUB_OFFLINE / HF_DATASETS_OFFLINE
        fix = (
            "offline mode is on (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE) and no cached copy was found: run once online,"
            " or give --data-dir a local folder with train/ and val/"
            if offline
            else "check the name, log in for a gated dataset (hf auth login), or give --data-dir a local folder"
        )
        raise DataError(
            f"--data-dir hf:{spec} cannot be opened ({type(e).__name__}: {first}): {fix}"
        ) from None


def _hub_datasets(name: str, train_tf: Any, eval_tf: Any, channels: int):
    ds = _load_hf(name)
    image_key, label_key = image_and_label_keys(ds["train"].features, where=f"hf:{name}")
    num_classes = _num_classes(ds["train"].features[label_key])
    mode = "L" if channels == 1 else "RGB"
    return (
        _HFImages(ds["train"], train_tf, image_key, label_key, mode),
        _HFImages(ds["validation"], eval_tf, image_key, label_key, mode),
        num_classes,
    )


class _StreamImages:
    """A torch IterableDataset over this process's part of a streamed split: decode and transform each row."""

    def __init__(
        self, dataset: Any, transform: Any, mode: str, *, image_key: str = "image", label_key: str = "label"
    ):
        import torch.utils.data

        class _Iter(torch.utils.data.IterableDataset):
            def __iter__(inner):
                for row in dataset:
                    yield transform(row[image_key].convert(mode)), int(row[label_key])

        self.dataset, self.iterable = dataset, _Iter()


class StreamingLoader:
    """Batches of a streamed split for one process: ``len()`` steps per epoch on every process (the split's size
    from the dataset info, divided by the global batch), and ``set_epoch`` to re-seed the shuffle buffer."""

    def __init__(self, stream: _StreamImages, *, batch_size: int, steps: int | None, workers: int) -> None:
        import torch.utils.data

        self.stream, self.steps = stream, steps
        self.loader = torch.utils.data.DataLoader(
            stream.iterable, batch_size=batch_size, num_workers=workers, drop_last=steps is not None
        )

    def set_epoch(self, epoch: int) -> None:
        self.stream.dataset.set_epoch(epoch)

    def __len__(self) -> int:
        if self.steps is None:
            raise TypeError("an evaluation stream has no fixed length")
        return self.steps

    def __iter__(self):
        for i, batch in enumerate(self.loader):
            if self.steps is not None and i >= self.steps:
                return
            yield batch


def _streaming_loaders(
    recipe: Recipe, train_tf, eval_tf, *, per_process_batch: int, rank: int, world_size: int
):
    from datasets.distributed import split_dataset_by_node

    spec = recipe.data_dir[len(HF_PREFIX) :]
    train = _load_hf(spec, split="train", streaming=True)
    val = _load_hf(spec, split="validation", streaming=True)
    image_key, label_key = image_and_label_keys(train.features, where=recipe.data_dir)
    num_classes = _num_classes(train.features[label_key])
    split_info = (train.info.splits or {}).get("train")
    total = split_info.num_examples if split_info else None
    if (
        not total
    ):  # no size in the dataset info (local folders): count the labels once, without decoding images
        total = sum(1 for _ in train.select_columns([label_key]))
    train = split_dataset_by_node(
        train.shuffle(seed=recipe.seed, buffer_size=10_000), rank=rank, world_size=world_size
    )
    val = split_dataset_by_node(val, rank=rank, world_size=world_size)  # disjoint parts: counts are summed
    mode = "L" if recipe.in_chans == 1 else "RGB"
    steps = total // (per_process_batch * world_size)
    if steps < 1:
        raise DataError(f"{recipe.data_dir}: {total} training images do not fill one global batch")
    return (
        StreamingLoader(
            _StreamImages(train, train_tf, mode, image_key=image_key, label_key=label_key),
            batch_size=per_process_batch,
            steps=steps,
            workers=min(recipe.workers, train.num_shards),
        ),
        StreamingLoader(
            _StreamImages(val, eval_tf, mode, image_key=image_key, label_key=label_key),
            batch_size=per_process_batch,
            steps=None,
            workers=min(recipe.workers, val.num_shards),
        ),
        num_classes,
    )


def build_image_loaders(
    recipe: Recipe, *, per_process_batch: int, rank: int = 0, world_size: int = 1
) -> tuple[DataLoader, DataLoader, bool]:
    """Train and eval loaders, and whether they still need ``accelerator.prepare`` to be sharded over processes
    (False for streams, which each process already reads its own part of).

    Raises:
        DataError: no data_dir, a missing split, or a class count that differs from the recipe's num_classes.
    """
    import torch

    if not recipe.data_dir:
        raise DataError(
            "ImageNet recipes need data_dir: a folder with train/ and val/, or hf:ILSVRC/imagenet-1k "
            "(pass --data-dir or --set data_dir=...)"
        )
    train_tf, eval_tf = build_transforms(recipe)
    if recipe.hf_streaming:
        train, val, n = _streaming_loaders(
            recipe, train_tf, eval_tf, per_process_batch=per_process_batch, rank=rank, world_size=world_size
        )
        _check_classes(recipe, n)
        return train, val, False
    if recipe.data_dir.startswith(HF_PREFIX):
        train, val, n = _hub_datasets(recipe.data_dir[len(HF_PREFIX) :], train_tf, eval_tf, recipe.in_chans)
    else:
        root = Path(recipe.data_dir)
        if not root.is_dir():
            raise DataNotFound(f"ImageNet data_dir {root} does not exist")
        train, val, n = _folder_datasets(root, train_tf, eval_tf, recipe.in_chans)
    _check_classes(recipe, n)
    common = dict(
        num_workers=recipe.workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=recipe.workers > 0,
    )
    train_loader = torch.utils.data.DataLoader(
        train, batch_size=per_process_batch, shuffle=True, drop_last=True, **common
    )
    eval_loader = torch.utils.data.DataLoader(val, batch_size=per_process_batch, shuffle=False, **common)
    return train_loader, eval_loader, True


def _check_classes(recipe: Recipe, n: int | None) -> None:
    if n is not None and n != recipe.num_classes:  # None: integer labels with no class count (webdataset cls)
        raise DataError(
            f"the dataset at {recipe.data_dir} has {n} classes but the recipe's model has "
            f"num_classes={recipe.num_classes}; pass --set num_classes={n} to train a new head"
        )


def write_shards(
    samples: list[tuple[Path, int]],
    folder: str | Path,
    *,
    split: str,
    class_names: list[str],
    shards: int = 2,
) -> None:
    """Write ``(JPEG path, label)`` samples as the shard formats above, ``shards`` of each: webdataset tars under
    ``folder/webdataset`` (``imagenet1k-{split}-NNNN.tar``, ``KEY.jpg`` + ``KEY.cls``) and parquet files under
    ``folder/parquet/data`` (``{split}-NNNNN-of-NNNNN.parquet``, ``image`` bytes + ``label`` ClassLabel). The JPEG
    bytes are copied, not re-encoded. ``split``: ``train`` or ``validation``. Used to turn an ImageFolder into the
    layouts clusters train from, and by the tests and ``bench/loader_speed.py`` to make them small."""
    import io
    import tarfile

    import datasets

    folder = Path(folder)
    wds, pq = folder / "webdataset", folder / "parquet" / "data"
    wds.mkdir(parents=True, exist_ok=True)
    pq.mkdir(parents=True, exist_ok=True)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=class_names)})
    for shard in range(shards):
        part = samples[shard::shards]
        with tarfile.open(wds / f"imagenet1k-{split}-{shard:04d}.tar", "w") as tar:
            for i, (path, label) in enumerate(part):
                for ext, data in (("jpg", Path(path).read_bytes()), ("cls", str(label).encode())):
                    info = tarfile.TarInfo(f"{split}_{shard}_{i:06d}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        table = {
            "image": [{"bytes": Path(p).read_bytes(), "path": None} for p, _ in part],
            "label": [c for _, c in part],
        }
        name = f"{split}-{shard:05d}-of-{shards:05d}.parquet"
        datasets.Dataset.from_dict(table, features=features).to_parquet(str(pq / name))
