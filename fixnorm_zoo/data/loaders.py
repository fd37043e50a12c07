"""A recipe's train and eval batches for one process: Fashion-MNIST in memory, else image folders or a Hugging
Face dataset."""

from __future__ import annotations

from fixnorm_zoo.errors import DataError
from fixnorm_zoo.recipe import Recipe


def build_loaders(recipe: Recipe, accelerator, per_process_batch: int):
    """The recipe's train and eval batches for this process: Fashion-MNIST in memory, else image folders or a
    Hugging Face dataset; returns ``(train, test, disjoint_shards)``."""
    if recipe.dataset == "fashion_mnist":
        from fixnorm_zoo.data.fashion_mnist import (
            BatchAugment,
            InMemoryLoader,
            fit_to_model,
            load_fashion_mnist,
        )

        if recipe.in_chans != 1:
            raise DataError(
                f"Fashion-MNIST images are grayscale (1 channel); the recipe's input_size is {recipe.input_size}"
            )
        if recipe.num_classes != 10:
            raise DataError(
                f"Fashion-MNIST has 10 classes (labels 0-9); the recipe's num_classes is {recipe.num_classes}: "
                "set num_classes: 10"
            )
        xtr, ytr = load_fashion_mnist(split="train", data_dir=recipe.data_dir)
        xte, yte = load_fashion_mnist(split="test", data_dir=recipe.data_dir)
        if recipe.holdout:
            if recipe.holdout >= len(xtr):
                raise DataError(
                    f"holdout={recipe.holdout} leaves no training images (the split has {len(xtr)})"
                )
            xtr, ytr, xte, yte = (
                xtr[: -recipe.holdout],
                ytr[: -recipe.holdout],
                xtr[-recipe.holdout :],
                ytr[-recipe.holdout :],
            )
        if recipe.train_subset:
            xtr, ytr = xtr[: recipe.train_subset], ytr[: recipe.train_subset]
        fit = dict(input_size=recipe.input_size, crop_pct=recipe.crop_pct, interpolation=recipe.interpolation)
        xtr, xte = fit_to_model(xtr, **fit), fit_to_model(xte, **fit)  # a model that takes them upscaled
        common = dict(
            mean=tuple(recipe.mean),
            std=tuple(recipe.std),
            seed=recipe.seed,
            rank=accelerator.process_index,
            world_size=accelerator.num_processes,
        )
        train = InMemoryLoader(
            xtr,
            ytr,
            batch_size=per_process_batch,
            train=True,
            random_erasing=recipe.reprob,
            alternate_flip=recipe.hflip_mode == "alternate",
            augment=BatchAugment(
                pad=recipe.crop_pad, hflip=recipe.hflip if recipe.hflip_mode == "random" else 0.0
            ),
            **common,
        )
        test = InMemoryLoader(xte, yte, batch_size=max(per_process_batch, 256), train=False, **common)
        return train, test, True
    from fixnorm_zoo.data.imagenet import build_image_loaders

    train, test, needs_prepare = build_image_loaders(
        recipe,
        per_process_batch=per_process_batch,
        rank=accelerator.process_index,
        world_size=accelerator.num_processes,
    )
    if not needs_prepare:  # streams: each process already reads its own disjoint part
        return train, test, True
    train, test = accelerator.prepare(train, test)
    return train, test, False
