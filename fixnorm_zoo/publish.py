"""``fixnorm-zoo publish``: a finished run → a Hub repo (or a local mirror folder) in timm's format, with its card,
after re-measuring the number it claims; the registry gets the pinned commit and the weights' sha256.

Why the gate: a published number must be one anybody can re-measure. Publishing re-evaluates the run's final
(EMA where used) weights with their own eval transform and refuses when the result differs from the run's recorded
top-1 by more than ``tolerance`` points, or when an eval setting is unknown.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fixnorm_zoo.errors import FixNormZooError, UnknownModelError

EVAL_KEYS = ("input_size", "crop_pct", "interpolation", "mean", "std")


class PublishRefused(FixNormZooError):
    """The re-evaluation does not confirm the run's claim, or the run cannot be re-evaluated as recorded."""


def _read_run(run_dir: Path) -> tuple[Any, dict[str, Any]]:
    from fixnorm_zoo.recipe import load_recipe

    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise PublishRefused(f"{run_dir} has no summary.json: only a finished run can be published")
    summary = json.loads(summary_path.read_text())
    missing = [k for k in EVAL_KEYS if summary.get("eval_setting", {}).get(k) is None]
    if missing:
        raise PublishRefused(
            f"{run_dir}: eval settings {missing} are unknown; the claim cannot be re-measured"
        )
    if summary.get("eval_split") not in ("test", "validation"):
        raise PublishRefused(
            f"{run_dir} was scored on {summary.get('eval_split')!r} (a tuning trial's held-out split), not on the "
            "test/validation split a published model is measured on; train it with holdout: 0"
        )
    return load_recipe(str(run_dir / "recipe.yaml")), summary


def _eval_data(recipe, data: str | None) -> str:
    if data:
        return data
    if recipe.dataset == "fashion_mnist":
        return f"fashion_mnist:{recipe.data_dir}" if recipe.data_dir else "fashion_mnist"
    if recipe.data_dir and not recipe.data_dir.startswith("hf:"):
        return recipe.data_dir
    raise PublishRefused("pass --data (an ImageFolder root with val/) to re-evaluate an ImageNet run")


def publish(
    run_dir: str | Path,
    *,
    repo_id: str,
    name: str | None = None,
    dry_run: str | Path | None = None,
    mirror: str | Path | None = None,
    private: bool = False,
    twin: str | Path | None = None,
    data: str | None = None,
    tolerance: float = 0.1,
    registry: str | Path | None = None,
) -> dict[str, Any]:
    """Verify, package and publish one run.

    Args:
        run_dir: a finished run directory (``summary.json``, ``recipe.yaml``, weights).
        repo_id: ``ORG/NAME`` on the Hub (or under the mirror).
        name: the zoo name (default: the registry entry whose name or alias is the recipe's name, else that name).
        dry_run: write the repo folder here and stop: no upload, no registry change.
        mirror: copy the folder to ``MIRROR/ORG/NAME`` instead of uploading (default: ``$FIXNORM_ZOO_HUB`` if
            set, else the Hub).
        private: create the Hub repo private.
        twin: the weight-decay twin's run directory: its top-1 and a comparison plot go into the card.
        data: evaluation data for the gate (default: the recipe's dataset).
        tolerance: the largest allowed |re-measured - claimed| top-1, in points.
        registry: the registry file to update (default: ``fixnorm_zoo.registry.registry_path()``).

    Returns: ``{"name", "repo_id", "revision", "sha256", "size", "top1", "top5", "folder"}``.

    Raises:
        PublishRefused: the claim is not confirmed or cannot be checked.
    """
    from fixnorm_zoo.evaluate import evaluate
    from fixnorm_zoo.hub import mirror_dir, sha256_file

    run_dir = Path(run_dir)
    recipe, summary = _read_run(run_dir)
    if "/" not in repo_id:
        raise PublishRefused(f"--repo-id {repo_id!r}: expected ORG/NAME")
    if twin is not None:
        twin_summary = json.loads((Path(twin) / "summary.json").read_text())
        if twin_summary.get("method") == recipe.method:
            raise PublishRefused(
                f"--twin {twin}: its method is also {recipe.method!r}; a twin differs in the method"
            )
    eval_data = _eval_data(recipe, data)
    measured = evaluate(str(run_dir), data=eval_data)
    claim = float(summary["top1"])
    if abs(measured["top1"] - claim) > tolerance:
        raise PublishRefused(
            f"{run_dir}: re-evaluation gives top-1 {measured['top1']:.3f}% but the run claims {claim:.3f}% "
            f"(|difference| > {tolerance} point): not published. Were the weights or summary.json changed?"
        )

    from fixnorm_zoo.registry import ModelInfo, model_info, registry_path, upsert

    registry = Path(registry) if registry else registry_path()
    try:
        existing = model_info(name or recipe.name)
    except UnknownModelError:
        existing = None
    zoo_name = existing.name if existing else (name or recipe.name)

    folder = Path(dry_run) if dry_run else Path(tempfile.mkdtemp(prefix="fixnorm_publish_"))
    _write_repo_folder(run_dir, folder, recipe=recipe, summary=summary, measured=measured, repo_id=repo_id,
                       zoo_name=zoo_name, existing=existing, twin=Path(twin) if twin else None,
                       eval_data=eval_data)  # fmt: skip
    weights = folder / "model.safetensors"
    sha, size = sha256_file(weights), weights.stat().st_size
    result = {"name": zoo_name, "repo_id": repo_id, "revision": None, "sha256": sha, "size": size,
              "top1": measured["top1"], "top5": measured["top5"], "folder": str(folder)}  # fmt: skip
    if dry_run:
        return result

    target = Path(mirror) if mirror else mirror_dir()
    if target is not None:
        dest = target / repo_id
        tmp = dest.with_name(dest.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(folder, tmp)
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
        result["folder"] = str(dest)
    else:
        from huggingface_hub import HfApi

        api = HfApi()
        api.create_repo(repo_id, private=private, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, folder_path=str(folder),
                                   commit_message=f"fixnorm_zoo: {zoo_name} (top-1 {measured['top1']:.2f}%)")  # fmt: skip
        result["revision"] = commit.oid
        shutil.rmtree(folder, ignore_errors=True)

    base = existing.to_dict() if existing else {}
    gmacs = base.get("gmacs")
    entry = {
        **base,
        "name": zoo_name,
        "architecture": recipe.model,
        "dataset": recipe.dataset,
        "recipe": base.get("recipe") or str(run_dir / "recipe.yaml"),
        "method": recipe.method,
        "status": "published",
        "model_args": recipe.model_args,
        "num_classes": recipe.num_classes,
        "in_chans": recipe.in_chans,
        "params_m": round(measured["param_count"], 3),
        "gmacs": gmacs,
        "eval_setting": {k: summary["eval_setting"][k] for k in summary["eval_setting"]},
        "top1": round(measured["top1"], 3),
        "top5": round(measured["top5"], 3),
        "eval_split": summary["eval_split"],
        "hub": {
            "repo_id": repo_id,
            "revision": result["revision"],
            "filename": "model.safetensors",
            "size": size,
            "sha256": sha,
        },  # fmt: skip
    }
    upsert(ModelInfo.from_dict(entry), path=registry)
    return result


def _write_repo_folder(run_dir: Path, folder: Path, *, recipe, summary, measured, repo_id, zoo_name, existing, twin,
                       eval_data) -> None:  # fmt: skip
    from timm.models import save_for_hf

    from fixnorm_zoo.cards import render_card
    from fixnorm_zoo.evaluate import _load_run
    from fixnorm_zoo.hub import sha256_file

    folder.mkdir(parents=True, exist_ok=True)
    model, _, _ = _load_run(run_dir)
    model_config: dict[str, Any] = {}
    if recipe.dataset == "fashion_mnist":
        from fixnorm_zoo.data import FASHION_MNIST_CLASSES

        model_config["label_names"] = list(FASHION_MNIST_CLASSES)
    save_for_hf(model, str(folder), model_config=model_config, model_args=dict(recipe.model_args),
                safe_serialization=True)  # fmt: skip
    for pickle_file in folder.glob("*.bin"):  # never publish a pickle, whatever timm's defaults become
        pickle_file.unlink()
    shutil.copyfile(run_dir / "curves.png", folder / "curves.png")
    twin_row, comparison = None, None
    if twin is not None:
        twin_summary = json.loads((twin / "summary.json").read_text())
        twin_row = {"name": f"{twin_summary['name']} ({twin_summary['method']}, run {twin.name})",
                    "top1": f"{twin_summary['top1']:.2f}", "top5": f"{twin_summary['top5']:.2f}",
                    "note": "the twin's recorded result, same recipe and budget"}  # fmt: skip
        from fixnorm_zoo.plots import plot_comparison

        comparison = "fixnorm_vs_wd.png"
        plot_comparison({recipe.method: run_dir, twin_summary["method"]: twin}, folder / comparison,
                        title=f"{zoo_name}: FixNorm vs weight decay")  # fmt: skip
    weights = folder / "model.safetensors"
    card = render_card(name=zoo_name, repo_id=repo_id, recipe=recipe, recipe_ref=existing.recipe if existing else
                       str(run_dir / "recipe.yaml"), summary=summary,
                       measured={**measured, "param_count": round(measured["param_count"], 3)},
                       sha256=sha256_file(weights), size=weights.stat().st_size,
                       gmacs=existing.gmacs if existing else None,
                       paper_top1=existing.paper_top1 if existing else None, twin=twin_row,
                       comparison_file=comparison, eval_data=eval_data.partition(":")[0],
                       license=existing.license if existing else "apache-2.0")  # fmt: skip
    (folder / "README.md").write_text(card)
    for path in folder.iterdir():
        path.chmod(0o644)  # readable by the mirror's other users (timm writes some files 0600)
