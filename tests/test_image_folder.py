"""ImageNet recipes are ready: a 2-step run at full resolution of every recipe on a tiny generated ImageFolder,
then the eval entry point on the same folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import reset_accelerate, run_torchrun

from fixnorm_zoo.errors import DataError
from fixnorm_zoo.recipe import RECIPES_DIR, load_recipe

IMAGENET_RECIPES = sorted((RECIPES_DIR / "imagenet").glob("*.yaml"))


def _smoke_overrides(root: Path) -> dict:
    # 8 train images / batch 4 = 2 optimizer steps at the recipe's full resolution; fp32 because bf16 autocast is
    # 10-40x slower than fp32 on this CPU (no AMX); EMA, RandAugment, random erasing, drop-path as in the recipe.
    return {
        "data_dir": str(root),
        "num_classes": 4,
        "batch_size": 4,
        "epochs": 1,
        "workers": 0,
        "amp": "no",
        "warmup_epochs": 0.5,
    }


@pytest.mark.parametrize("path", IMAGENET_RECIPES, ids=[p.stem for p in IMAGENET_RECIPES])
def test_two_step_run_at_full_resolution(path: Path, tiny_imagefolder: Path, tmp_path: Path) -> None:
    from fixnorm_zoo.engine.train import train
    from fixnorm_zoo.zoo.evaluate import evaluate

    recipe = load_recipe(path, overrides=_smoke_overrides(tiny_imagefolder))
    assert recipe.input_size[1] >= 208  # full resolution, not a shrunken proxy
    summary = train(recipe, output_dir=tmp_path, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert rows[-1]["updates"] == 2
    assert summary["eval_setting"]["input_size"] == tuple(recipe.input_size) or list(
        summary["eval_setting"]["input_size"]
    ) == list(recipe.input_size)
    if recipe.method == "fixnorm":
        assert rows[-1]["max_norm_error"] < 1e-4
    # the eval entry point, with the model's own eval transform, agrees with the training-time eval
    reset_accelerate()
    row = evaluate(str(tmp_path), data=str(tiny_imagefolder), batch_size=4, workers=0)
    assert row["n"] == 8
    assert row["top1"] == pytest.approx(summary["top1"], abs=1e-6)
    assert row["img_size"] == recipe.input_size[-1] and row["crop_pct"] == recipe.crop_pct


def test_mobilenetv2_scaled_matches_efficientnet_b0_flops() -> None:
    """The recipe's claim, recomputed: MobileNetV2 scaled to EfficientNet-B0's MACs within 5%."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from fixnorm_zoo.models.build import model_from_recipe

    macs = {}
    for name in ("mobilenetv2_scaled_fixnorm", "efficientnet_b0_fixnorm"):
        recipe = load_recipe(f"imagenet/{name}")
        model = model_from_recipe(recipe).eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.randn(1, *recipe.input_size))
        macs[name] = counter.get_total_flops() / 2
    ratio = macs["mobilenetv2_scaled_fixnorm"] / macs["efficientnet_b0_fixnorm"]
    assert abs(ratio - 1) < 0.05, ratio
    assert macs["efficientnet_b0_fixnorm"] == pytest.approx(0.3858e9, rel=0.01)


def test_class_count_mismatch_is_refused(tiny_imagefolder: Path, tmp_path: Path) -> None:
    from fixnorm_zoo.engine.train import train

    recipe = load_recipe(
        "imagenet/resnet50_fixnorm", overrides={**_smoke_overrides(tiny_imagefolder), "num_classes": 1000}
    )
    with pytest.raises(DataError, match="has 4 classes but the recipe's model has num_classes=1000"):
        train(recipe, output_dir=tmp_path, progress=False)


def test_missing_imagenet_dir_is_refused(tmp_path: Path) -> None:
    from fixnorm_zoo.engine.train import train

    recipe = load_recipe("imagenet/resnet50_fixnorm", overrides={"data_dir": str(tmp_path / "nowhere")})
    with pytest.raises(DataError, match="does not exist"):
        train(recipe, output_dir=tmp_path / "run", progress=False)


@pytest.mark.parametrize("streaming", [False, True], ids=["hf-datasets", "hf-streaming"])
def test_datasets_path_trains_and_evaluates(streaming: bool, tiny_imagefolder: Path, tmp_path: Path) -> None:
    """The `hf:` data path through `datasets` (here its imagefolder builder on the tiny folder; on a cluster
    hf:ILSVRC/imagenet-1k), map-style or streamed with split_dataset_by_node."""
    from fixnorm_zoo.engine.train import train

    overrides = {
        **_smoke_overrides(tiny_imagefolder),
        "data_dir": f"hf:imagefolder:{tiny_imagefolder}",
        "hf_streaming": streaming,
        "model_ema": False,
    }
    recipe = load_recipe("imagenet/efficientnet_b0_fixnorm", overrides=overrides)
    train(recipe, output_dir=tmp_path, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert rows[-1]["updates"] == 2
    # scored on the 8 validation images (4 classes x 2): top-1 is k/8, a multiple of 12.5 (7 counted would not be)
    k = rows[-1]["top1"] * 8 / 100
    assert abs(k - round(k)) < 1e-6 and 0 <= round(k) <= 8


def test_streaming_parts_are_disjoint_and_cover_the_split(tiny_imagefolder: Path) -> None:
    from fixnorm_zoo.data.imagenet import build_image_loaders

    overrides = {
        **_smoke_overrides(tiny_imagefolder),
        "data_dir": f"hf:imagefolder:{tiny_imagefolder}",
        "hf_streaming": True,
        "input_size": [3, 32, 32],
        "auto_augment": None,
    }
    recipe = load_recipe("imagenet/efficientnet_b0_fixnorm", overrides=overrides)
    seen = []
    for rank in range(2):
        train, val, needs_prepare = build_image_loaders(recipe, per_process_batch=2, rank=rank, world_size=2)
        assert not needs_prepare and len(train) == 2  # 8 images / (2 per process x 2 processes)
        assert sum(len(x) for x, _ in train) == 4
        seen.append(sorted(int(y) for _, ys in val for y in ys))
    assert sorted(seen[0] + seen[1]) == sorted([c for c in range(4) for _ in range(2)])
    assert len(seen[0]) == len(seen[1]) == 4


@pytest.mark.slow  # 16 s; CI runs it (make test-slow)
@pytest.mark.multiproc
def test_two_process_eval_counts_each_image_once(tiny_imagefolder: Path, tmp_path: Path) -> None:
    """8 val images, batch 3 per process over 2 processes: the prepared DataLoader pads the last batches with
    duplicates, which gather_for_metrics must drop; the result equals the one-process eval exactly."""

    from fixnorm_zoo.engine.train import train

    overrides = {**_smoke_overrides(tiny_imagefolder), "input_size": [3, 64, 64], "model_ema": False}
    train(
        load_recipe("imagenet/resnet50_fixnorm", overrides=overrides),
        output_dir=tmp_path / "run",
        progress=False,
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    common = [
        "-m",
        "fixnorm_zoo.cli",
        "eval",
        str(tmp_path / "run"),
        "--data",
        str(tiny_imagefolder),
        "--batch-size",
        "3",
        "--workers",
        "0",
    ]
    outputs = []
    for proc in (
        run_torchrun(common),
        subprocess.run([sys.executable, *common], env=env, capture_output=True, text=True, timeout=300),
    ):
        assert proc.returncode == 0, proc.stderr[-3000:]
        outputs.append(proc.stdout.splitlines())
    # the whole output, not its tail: only rank 0 prints, so two processes print what one prints, once
    assert outputs[0] == outputs[1] and len(outputs[0]) == 3 and outputs[0][2] == "(8 images)"


@pytest.fixture(scope="module")
def tiny_shards(tiny_imagefolder: Path, tmp_path_factory) -> dict[str, Path]:
    """The tiny folder's JPEG bytes as the formats ImageNet is trained from (``write_shards``): webdataset shards
    laid out as timm/imagenet-1k-wds and parquet shards as the Hub's imagenet-1k, two shards per split, so two ranks
    can each read their own."""
    from helpers import IMAGE_FOLDER_CLASSES

    from fixnorm_zoo.data.imagenet import write_shards

    root = tmp_path_factory.mktemp("shards")
    for split, folder in (("train", "train"), ("validation", "val")):
        samples = [
            (p, c)
            for c, name in enumerate(IMAGE_FOLDER_CLASSES)
            for p in sorted((tiny_imagefolder / folder / name).iterdir())
        ]
        write_shards(samples, root, split=split, class_names=list(IMAGE_FOLDER_CLASSES))
    return {"webdataset": root / "webdataset", "parquet": root / "parquet"}


@pytest.mark.parametrize("fmt", ["webdataset", "parquet"])
def test_webdataset_and_parquet_shards_train_and_evaluate(
    fmt: str, tiny_shards, tiny_imagefolder, tmp_path
) -> None:
    """ImageNet's shard formats through `datasets` (hf:webdataset:DIR, hf:parquet:DIR), map-style: two
    updates at full resolution, scored on the 8 validation images."""
    from fixnorm_zoo.engine.train import train

    overrides = {
        **_smoke_overrides(tiny_imagefolder),
        "data_dir": f"hf:{fmt}:{tiny_shards[fmt]}",
        "model_ema": False,
    }
    train(
        load_recipe("imagenet/efficientnet_b0_fixnorm", overrides=overrides),
        output_dir=tmp_path,
        progress=False,
    )
    rows = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert rows[-1]["updates"] == 2
    k = rows[-1]["top1"] * 8 / 100
    assert abs(k - round(k)) < 1e-6


# parquet's variant (20 s) in the slow suite: the split by rank is the same `datasets` code for both formats, and
# test_webdataset_and_parquet_shards_train_and_evaluate keeps parquet in the default suite
@pytest.mark.parametrize("fmt", ["webdataset", pytest.param("parquet", marks=pytest.mark.slow)])
def test_streamed_shards_split_by_rank_in_a_repeatable_order(fmt: str, tiny_shards, tiny_imagefolder) -> None:
    """Streamed, each of 2 ranks reads its own shard (disjoint, together every image once) and an epoch's order is
    the same when read again (a resumed epoch replays it)."""
    from fixnorm_zoo.data.imagenet import build_image_loaders

    overrides = {
        **_smoke_overrides(tiny_imagefolder),
        "data_dir": f"hf:{fmt}:{tiny_shards[fmt]}",
        "hf_streaming": True,
        "input_size": [3, 32, 32],
        "auto_augment": None,
        "reprob": 0.0,
    }
    recipe = load_recipe("imagenet/efficientnet_b0_fixnorm", overrides=overrides)
    seen = []
    for rank in range(2):
        train, val, needs_prepare = build_image_loaders(recipe, per_process_batch=2, rank=rank, world_size=2)
        assert not needs_prepare and len(train) == 2
        train.set_epoch(1)
        first = [ys.tolist() for _, ys in train]
        train.set_epoch(1)
        assert [ys.tolist() for _, ys in train] == first  # same epoch, same order
        seen.append(sorted(int(y) for _, ys in val for y in ys))
    assert sorted(seen[0] + seen[1]) == sorted(c for c in range(4) for _ in range(2))
