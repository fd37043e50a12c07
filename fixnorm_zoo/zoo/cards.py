"""Model cards: the repo's ``README.md`` rendered from ``model_cards/template.md`` (installed as
``fixnorm_zoo.model_cards``) with huggingface_hub's ``ModelCard`` (Hub YAML metadata with a ``model-index`` of the
measured results); and the card of a registry entry that has no published run (a recipe, or a retired model)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fixnorm_zoo.utils.resources import package_data_dir

CARDS_DIR = package_data_dir("model_cards")
TEMPLATE = CARDS_DIR / "template.md"
DATASETS = {
    "fashion_mnist": ("Fashion-MNIST", "zalando-datasets/fashion_mnist"),
    "imagenet": ("ImageNet-1k", "ILSVRC/imagenet-1k"),
}


def render_card(
    *,
    name: str,
    repo_id: str,
    recipe,
    recipe_ref: str,
    summary: dict[str, Any],
    measured: dict[str, Any],
    sha256: str,
    size: int,
    gmacs: float | None,
    paper_top1: float | None = None,
    twin: dict[str, Any] | None = None,
    curves_file: str = "curves.png",
    comparison_file: str | None = None,
    eval_data: str,
    license: str = "apache-2.0",
    resume_changes: list[dict[str, Any]] | None = None,
    notes: str = "",
    recipe_yaml: str | None = None,
    provenance_note: str = "",
) -> str:
    """The card's full text. ``measured`` is publish's re-evaluation (top1, top5, param_count in millions);
    ``notes`` the registry entry's (the spread over seeds, see :func:`seeds_line`); ``recipe_yaml`` the recipe file as
    run (default: ``recipe`` written out)."""
    from huggingface_hub import ModelCard

    from fixnorm_zoo.models.resnet9s import REGISTERED_MODELS

    dataset_name = DATASETS[recipe.dataset][0]
    split = summary.get("eval_split", "test")
    ev = summary["eval_setting"]
    card_data = _card_data(
        name=name, recipe=recipe, measured=measured, split=split, license=license, eval_setting=ev
    )
    channels = int(ev["input_size"][0])
    method_text, fixnorm_text = _method_texts(recipe)
    extra = []
    if twin is not None:
        extra.append(
            {
                "name": twin["name"],
                "top1": twin["top1"],
                "top5": twin["top5"],
                "note": twin.get("note", "same recipe, other method"),
            }
        )
    minutes = summary.get("train_time_s", 0) / 60
    card = ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        name=name,
        summary=(
            f"A {dataset_name} image classifier trained with "
            f"{'FixNorm' if recipe.method == 'fixnorm' else 'weight decay (the FixNorm baseline)'} "
            "by fixnorm_zoo."
        ),
        architecture=recipe.model,
        registered_arch=recipe.model in REGISTERED_MODELS,
        model_args=recipe.model_args,
        params_m=measured["param_count"],
        gmacs=gmacs if gmacs is not None else "n/a",
        input_size="x".join(str(v) for v in ev["input_size"]),
        method=recipe.method,
        method_text=method_text,
        dataset_name=dataset_name,
        eval_split=split,
        license=license,
        top1=f"{measured['top1']:.2f}",
        top5=f"{measured['top5']:.2f}",
        eval_text=(
            f"{ev['input_size'][-1]} px, crop {ev['crop_pct']}, {ev['interpolation']}, "
            f"mean {list(ev['mean'])}, std {list(ev['std'])}"
        ),
        extra_rows=extra,
        paper_top1=paper_top1,
        repo_id=repo_id,
        eval_data=eval_data,
        curves_file=curves_file,
        comparison_file=comparison_file,
        fixnorm_text=fixnorm_text,
        recipe_ref=recipe_ref,
        seed_note=f"seed {recipe.seed}",
        train_command=train_command(recipe, recipe_ref),
        recipe_yaml=(recipe_yaml if recipe_yaml is not None else recipe.to_yaml()).strip(),
        seeds_line=seeds_line(notes),
        provenance_note=provenance_note,
        resume_changes=[
            {
                "from_epoch": c["from_epoch"],
                "text": ", ".join(f"`{k}` {old!r} -> {new!r}" for k, (old, new) in c["changes"].items()),
            }
            for c in resume_changes or []
        ],
        in_chans=channels,
        input_text=(
            f"{'1-channel (grayscale)' if channels == 1 else f'{channels}-channel (RGB)'} "
            f'{ev["input_size"][1]}x{ev["input_size"][2]} images; `fixnorm_zoo.get_transforms("{name}")` converts '
            "any PIL image to this"
            + (
                ' (with timm\'s `create_transform`, convert first: `img.convert("L")`)'
                if channels == 1
                else ""
            )
        ),
        validate_data=(
            "--dataset torch/fashion_mnist --split test --data-dir DIR --device cpu  "
            "# DIR/FashionMNIST/raw/: the 4 IDX files, uncompressed; --device cuda on a GPU"
            if recipe.dataset == "fashion_mnist"
            else "--data-dir /data/imagenet --split val"
        ),
        train_time=f"{minutes:.1f} min",
        num_processes=summary.get("num_processes", 1),
        size=size,
        sha256=sha256,
    )
    return str(card)


def seeds_line(notes: str) -> str:
    """The card's line on training seeds. A published entry's registry notes hold the spread over seeds measured for
    its recipe (``tools/registry_notes.py`` writes them from the project's results table); without notes, one run is
    all that is known."""
    if notes:
        text = notes.replace(" +- ", " ± ").replace(
            "(eval/results.csv", "(the fixnorm_zoo repository's eval/results.csv"
        )
        std = "; ± is the standard deviation over those seeds" if " ± " in text else ""
        return f"**Seeds.** These weights are {text.rstrip('.')}{std}."
    return (
        "**Seeds.** One training run is published; no spread over seeds is recorded for it (train the recipe at "
        "other seeds to measure one)."
    )


def render_repo_card(
    folder: Path,
    *,
    name: str,
    repo_id: str,
    recipe_ref: str,
    eval_split: str,
    eval_data: str,
    gmacs: float | None,
    paper_top1: float | None = None,
    twin: dict[str, Any] | None = None,
    license: str = "apache-2.0",
    notes: str = "",
) -> str:
    """The card of a published repo folder, from the files it carries (``train_hparams.yaml``, ``results.csv``,
    ``provenance.json``, ``log.jsonl``, ``config.json``, the weights) and the registry's facts given here.

    Why from the folder: ``publish`` writes those files first and renders the card from them, and a card refresh
    (``tools/refresh_release.py``) renders it again from the same files, so a published card can follow the template
    without retraining or touching the weights.
    """
    import csv
    import json

    from fixnorm_zoo.recipe import load_recipe
    from fixnorm_zoo.zoo.hub import WEIGHTS_FILE, sha256_file

    hparams = folder / "train_hparams.yaml"
    recipe = load_recipe(str(hparams))
    with open(folder / "results.csv", newline="") as f:
        row = next(csv.DictReader(f))
    measured = {k: float(row[k]) for k in ("top1", "top5", "param_count")}
    prov = json.loads((folder / "provenance.json").read_text())
    cfg = json.loads((folder / "config.json").read_text())["pretrained_cfg"]
    summary = {
        "eval_setting": {
            k: cfg[k] for k in ("input_size", "crop_pct", "crop_mode", "interpolation", "mean", "std")
        },
        "eval_split": eval_split,
        "train_time_s": prov.get("train_time_s") or 0,
        "num_processes": prov.get("num_processes") or 1,
    }
    history = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines() if line.strip()]
    weights = folder / WEIGHTS_FILE
    comparison = "fixnorm_vs_wd.png"
    return render_card(
        name=name,
        repo_id=repo_id,
        recipe=recipe,
        recipe_ref=recipe_ref,
        summary=summary,
        measured={**measured, "param_count": round(measured["param_count"], 3)},
        sha256=sha256_file(weights),
        size=weights.stat().st_size,
        gmacs=gmacs,
        paper_top1=paper_top1,
        twin=twin,
        comparison_file=comparison if twin is not None and (folder / comparison).is_file() else None,
        eval_data=eval_data,
        license=license,
        resume_changes=[
            {"from_epoch": r["epoch"], "changes": r["resume_changes"]}
            for r in history
            if r.get("resume_changes")
        ],
        notes=notes,
        recipe_yaml=hparams.read_text(),
        provenance_note=prov.get("note", ""),
    )


def train_command(recipe, recipe_ref: str) -> str:
    """The command that trains ``recipe`` again: the shipped recipe ``recipe_ref`` with a ``--set`` for every field
    the run changed (a 512-image run is not the shipped recipe, and its card must not say it is)."""
    import json
    import shlex

    from fixnorm_zoo.recipe import load_recipe, shipped_recipe_for

    if shipped_recipe_for(recipe.name) != recipe_ref:
        return (
            f"fixnorm-zoo train RECIPE.yaml  # {recipe_ref}: the recipe as run, below, saved as RECIPE.yaml"
        )
    shipped, ran = load_recipe(recipe_ref).to_dict(), recipe.to_dict()
    sets = [
        f"--set {shlex.quote(f'{k}={json.dumps(v) if isinstance(v, list | dict) or v is None else v}')}"
        for k, v in ran.items()
        if shipped.get(k) != v and k not in ("data_dir",)
    ]
    return " ".join(["fixnorm-zoo train", recipe_ref, *sets])


def _card_data(
    *, name: str, recipe, measured: dict[str, Any], split: str, license: str, eval_setting: dict[str, Any]
):
    """The card's YAML metadata: tags, license, dataset, the measured top-1/top-5 as Hub eval results, and the eval
    setting they were measured with (machine-readable, as the weights' ``pretrained_cfg`` holds it)."""
    from huggingface_hub import EvalResult, ModelCardData

    dataset_name, dataset_id = DATASETS[recipe.dataset]
    method_tags = ["fixnorm"] if recipe.method == "fixnorm" else ["weight-decay", "baseline"]
    # arxiv:ID: the Hub links the paper page from this tag
    tags = [
        "image-classification",
        "timm",
        *method_tags,
        recipe.dataset.replace("_", "-"),
        "arxiv:2103.15345",
    ]
    results = [
        EvalResult(
            task_type="image-classification",
            dataset_type=dataset_id,
            dataset_name=dataset_name,
            dataset_split=split,
            metric_type="accuracy",
            metric_name=name_,
            metric_value=value,
        )
        for name_, value in (("top-1 accuracy", measured["top1"]), ("top-5 accuracy", measured["top5"]))
    ]
    card_data = ModelCardData(
        library_name="timm",
        license=license,
        datasets=[dataset_id],
        tags=tags,
        model_name=name,
        eval_results=results,
        pipeline_tag="image-classification",
        eval_setting={
            k: list(v) if isinstance(v, list | tuple) else v
            for k, v in eval_setting.items()
            if k in ("input_size", "crop_pct", "crop_mode", "interpolation", "mean", "std")
        },
    )
    return card_data


def _method_texts(recipe) -> tuple[str, str]:
    """One line naming the method, and the paragraph that explains it with the recipe's numbers."""
    if recipe.method == "fixnorm":
        method_text = (
            f"FixNorm (no weight decay; invariant weight norms fixed, classifier norm "
            f"{recipe.fc_norm if recipe.fc_norm is not None else 'kept at its initial value'})"
        )
        fixnorm_text = (
            "FixNorm (Zhou, Sun, Zhong, arXiv 2103.15345) trains without weight decay. Weights followed by a "
            "normalization layer are scale-invariant, so weight decay only sets their effective learning rate "
            "(lr/||W||^2); FixNorm holds each such ||W|| at its initial value "
            f"({'a constant ' + str(recipe.invariant_norm) if recipe.invariant_norm else 'default'}), so the LR "
            f"schedule alone sets it. The classifier, which is not scale-invariant, has its norm fixed to "
            f"`fc_norm = {recipe.fc_norm}` ({recipe.fc_norm_mode}), which sets the logit scale. Peak LR "
            f"{recipe.lr} ({recipe.optimizer}, {recipe.sched} schedule, {recipe.epochs} epochs, batch "
            f"{recipe.batch_size})."
        )
    else:
        method_text = f"weight decay {recipe.weight_decay} (the FixNorm model's baseline twin)"
        fixnorm_text = (
            f"The weight-decay baseline: the same recipe as its FixNorm twin but with weight decay "
            f"{recipe.weight_decay} on conv/linear weights instead of fixed norms. Peak LR {recipe.lr} "
            f"({recipe.optimizer}, {recipe.sched}, {recipe.epochs} epochs, batch {recipe.batch_size})."
        )
    return method_text, fixnorm_text


def render_entry_card(info) -> str:
    """The card of a registry entry without a published run: a recipe (what it is, how to train it, and that nothing
    is measured yet) or a retired model (its successor, and its numbers kept on record)."""
    from huggingface_hub import ModelCardData

    method = "FixNorm" if info.method == "fixnorm" else "weight decay (the FixNorm model's baseline twin)"
    tags = [
        "image-classification",
        "timm",
        "fixnorm" if info.method == "fixnorm" else "weight-decay",
        "arxiv:2103.15345",
    ]
    data = ModelCardData(library_name="timm", license=info.license, tags=tags, model_name=info.name)
    size = "x".join(str(v) for v in info.eval_setting.get("input_size", [])[1:])
    lines = [
        f"# {info.name}",
        "",
        f"timm `{info.architecture}`"
        + (f" with `model_args={info.model_args}`" if info.model_args else "")
        + f" at {size} px, {info.dataset}, trained with {method}; recipe `{info.recipe}`.",
        "",
    ]
    if info.status == "retired":
        lines += [
            f"**Retired**: an older model, superseded by `{info.superseded_by}`; its weights are no longer served "
            f"(`fixnorm_zoo.load` names the successor). On record: test top-1 {info.top1} / top-5 {info.top5} "
            f"({info.eval_split} split), weights sha256 `{info.hub.sha256}`. {info.notes}",
        ]
    else:
        paper = f" The FixNorm paper reports {info.paper_top1}% top-1 for it." if info.paper_top1 else ""
        lines += [
            f"**Recipe only**: no weights are published and no accuracy of it is measured here.{paper} Train it with "
            f"`fixnorm-zoo train {info.recipe}`; params {info.params_m} M, {info.gmacs} GMACs (measured from the "
            "built model).",
        ]
    return f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines) + "\n"
