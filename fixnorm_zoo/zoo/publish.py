"""``fixnorm-zoo publish``: a finished run → a Hub repo (or a local mirror folder) in timm's format, with its card,
after re-measuring the number it claims; the registry gets the pinned commit and the weights' sha256.

Why the gate: a published number must be one anybody can re-measure. Publishing re-evaluates the run's final
(EMA where used) weights with their own eval transform and refuses when the result differs from the run's recorded
top-1 by more than ``tolerance`` points, or when an eval setting is unknown.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from fixnorm_zoo.data.transforms import EVAL_KEYS, REQUIRED_EVAL_KEYS
from fixnorm_zoo.engine.rundir import RunDir
from fixnorm_zoo.errors import DataError, PublishRefused, UnknownModelError
from fixnorm_zoo.utils.atomic import check_writable_target, fault_point
from fixnorm_zoo.utils.names import NAME, NAME_RULE
from fixnorm_zoo.zoo.hub import (
    WEIGHTS_FILE,
    check_hub_reachable,
    check_repo_id,
    mirror_dir,
    mirror_repo_dir,
    sha256_file,
)


def _read_run(run_dir: Path) -> tuple[Any, dict[str, Any]]:
    from fixnorm_zoo.recipe import load_recipe

    run = RunDir(run_dir)
    if not run.is_finished():
        raise PublishRefused(f"{run_dir} has no {RunDir.SUMMARY}: only a finished run can be published")
    summary = _read_summary(run_dir)
    missing = [k for k in REQUIRED_EVAL_KEYS if summary.get("eval_setting", {}).get(k) is None]
    if missing:
        raise PublishRefused(
            f"{run_dir}: eval settings {missing} are unknown; the claim cannot be re-measured"
        )
    if summary.get("eval_split") not in ("test", "validation"):
        raise PublishRefused(
            f"{run_dir} was scored on {summary.get('eval_split')!r} (a tuning trial's held-out split), not on the "
            "test/validation split a published model is measured on; train it with holdout: 0"
        )
    return load_recipe(str(run.recipe_file)), summary


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
    replace: bool = False,
) -> dict[str, Any]:
    """Verify, package and publish one run.

    Args:
        run_dir: a finished run directory (``summary.json``, ``recipe.yaml``, weights).
        repo_id: ``ORG/NAME`` on the Hub (or under the mirror); checked with huggingface_hub's validator.
        name: the zoo name (default: the registry entry whose name or alias is the recipe's name, else that name).
        dry_run: write the repo folder here (a new or empty folder) and stop: no upload, no registry change.
        mirror: copy the folder to ``MIRROR/ORG/NAME`` instead of uploading (default: ``$FIXNORM_ZOO_HUB`` if
            set, else the Hub).
        private: create the Hub repo private.
        twin: the weight-decay twin's run directory: its top-1 and a comparison plot go into the card.
        data: evaluation data for the gate (default: the recipe's dataset).
        tolerance: the largest allowed |re-measured - claimed| top-1, in points.
        registry: the registry file to look the entry up in and update (default: ``$FIXNORM_ZOO_REGISTRY``, else
            the package's ``zoo.json``).
        replace: allow replacing an entry that already has published weights.

    Returns: ``{"name", "repo_id", "revision", "sha256", "size", "top1", "top5", "folder"}``.

    Raises:
        PublishRefused: the claim is not confirmed or cannot be checked, or the publish would replace what it
            must not (a published entry without ``replace``, a non-empty ``dry_run`` folder).
    """
    plan = _check(
        Path(run_dir),
        repo_id=repo_id,
        name=name,
        dry_run=Path(dry_run) if dry_run else None,
        mirror=mirror,
        twin=Path(twin) if twin else None,
        data=data,
        registry=registry,
        replace=replace,
    )
    measured = _reverify(plan.run_dir, plan.summary, data=plan.eval_data, tolerance=tolerance)  # the gate
    recipe_ref = _recipe_ref(plan.recipe, plan.existing)
    # the mirror's ORG folder, opened now (after the re-evaluation) without following a symlink at any component:
    # staging, swap and clean-up all go through that descriptor, so a folder swapped in meanwhile is never written
    slot = MirrorSlot(plan.target, repo_id) if plan.dest is not None else None
    if slot is not None:
        folder = slot.new_staging()
    elif plan.dry_run:
        folder = plan.dry_run
    else:
        folder = Path(tempfile.mkdtemp(prefix=".fixnorm_publish_"))
    try:
        result = _stage(plan, folder, measured=measured, recipe_ref=recipe_ref)
        if plan.dry_run:
            return result
        fault_point("publish:staged")
        _deliver(plan, folder, slot=slot, result=result, private=private)
    finally:
        if slot is not None:
            slot.close()
        elif not plan.dry_run:
            shutil.rmtree(folder, ignore_errors=True)
    _record(plan, measured=measured, result=result, recipe_ref=recipe_ref)
    return result


@dataclasses.dataclass
class _Plan:
    """What :func:`_check` established before any work: the run, its registry entry and where the repo goes."""

    run_dir: Path
    recipe: Any
    summary: dict[str, Any]
    registry: Any
    existing: Any
    zoo_name: str
    repo_id: str
    dry_run: Path | None
    target: Path | None
    dest: Path | None
    twin: Path | None
    twin_name: str | None
    eval_data: str


def _check(
    run_dir: Path,
    *,
    repo_id: str,
    name: str | None,
    dry_run: Path | None,
    mirror: str | Path | None,
    twin: Path | None,
    data: str | None,
    registry: str | Path | None,
    replace: bool,
) -> _Plan:
    """Every refusal that needs no re-evaluation, first: a bad run, repo id, name, registry, dry-run folder or twin,
    an entry that must not be replaced, an unreachable Hub (an upload that cannot happen should not cost the gate)."""
    from fixnorm_zoo.zoo.registry import Registry

    recipe, summary = _read_run(run_dir)
    check_repo_id(repo_id)
    reg = Registry(registry)
    if not dry_run:
        check_writable_target(reg.path)  # before any work: a symlinked or special registry file is refused
    existing = _existing_entry(reg, name or recipe.name, may_replace=replace or bool(dry_run))
    zoo_name = existing.name if existing else (name or recipe.name)
    if not NAME.fullmatch(zoo_name):
        raise PublishRefused(f"--name {zoo_name!r}: a zoo name is {NAME_RULE}")
    target = None if dry_run else mirror_dir(mirror)
    dest = mirror_repo_dir(target, repo_id) if target is not None else None
    if dry_run and dry_run.exists() and (not dry_run.is_dir() or any(dry_run.iterdir())):
        raise PublishRefused(f"--dry-run {dry_run}: not a new or empty folder; name one that is")
    if not dry_run and dest is None:
        check_hub_reachable()
    twin_name = None
    if twin is not None:
        twin_summary = _read_summary(twin)
        if twin_summary.get("method") == recipe.method:
            raise PublishRefused(
                f"--twin {twin}: its method is also {recipe.method!r}; a twin differs in the method"
            )
        paired = reg.twin_of(zoo_name)  # a card names its twin as users look it up: by its zoo name
        twin_name = (
            paired.name if paired and paired.method == twin_summary.get("method") else twin_summary["name"]
        )
    return _Plan(
        run_dir=run_dir,
        recipe=recipe,
        summary=summary,
        registry=reg,
        existing=existing,
        zoo_name=zoo_name,
        repo_id=repo_id,
        dry_run=dry_run,
        target=target,
        dest=dest,
        twin=twin,
        twin_name=twin_name,
        eval_data=_eval_data(recipe, data),
    )


def _stage(plan: _Plan, folder: Path, *, measured: dict[str, Any], recipe_ref: str) -> dict[str, Any]:
    """The repo folder written in ``folder`` (weights, config, card, tracing files); publish's result so far."""
    _write_repo_folder_or_fail(
        plan.run_dir,
        folder,
        recipe=plan.recipe,
        summary=plan.summary,
        measured=measured,
        repo_id=plan.repo_id,
        zoo_name=plan.zoo_name,
        existing=plan.existing,
        twin=plan.twin,
        twin_name=plan.twin_name,
        eval_data=plan.eval_data,
        recipe_ref=recipe_ref,
    )
    weights = folder / WEIGHTS_FILE
    return {
        "name": plan.zoo_name,
        "repo_id": plan.repo_id,
        "revision": None,
        "sha256": sha256_file(weights),
        "size": weights.stat().st_size,
        "top1": measured["top1"],
        "top5": measured["top5"],
        "folder": str(folder),
    }


def _deliver(
    plan: _Plan, folder: Path, *, slot: MirrorSlot | None, result: dict[str, Any], private: bool
) -> None:
    """The staged folder swapped into the mirror, or uploaded to the Hub (its commit recorded in ``result``)."""
    if slot is not None:
        slot.swap_in()
        result["folder"] = str(plan.dest)
    else:
        message = f"fixnorm_zoo: {plan.zoo_name} (top-1 {result['top1']:.2f}%)"
        result["revision"] = _upload(folder, repo_id=plan.repo_id, private=private, message=message)


def _record(plan: _Plan, *, measured: dict[str, Any], result: dict[str, Any], recipe_ref: str) -> None:
    """The registry entry, written last: it names only weights that are already where it says."""
    from fixnorm_zoo.zoo.registry import ModelInfo

    entry = _registry_entry(
        plan.existing, plan.recipe, plan.summary, measured, result=result, recipe_ref=recipe_ref
    )
    fault_point("publish:before_registry")
    plan.registry.upsert(ModelInfo.from_dict(entry))


def _existing_entry(reg, name: str, *, may_replace: bool):
    """The registry entry this publish updates, or None for a new one. Published weights are replaced only when
    asked (``--replace``): a careless re-publish must not overwrite a released model."""
    try:
        existing = reg.get(name)
    except UnknownModelError:
        return None
    if existing.status == "published" and not may_replace:
        raise PublishRefused(
            f"zoo entry {existing.name!r} in {reg.path} already has published weights (top-1 {existing.top1}): pass "
            "--replace to overwrite it, or --name NEW_NAME to publish beside it"
        )
    return existing


def _reverify(run_dir: Path, summary: dict[str, Any], *, data: str, tolerance: float) -> dict[str, Any]:
    """The publish gate: evaluate the run's weights again, with their eval transform, and compare with the claim."""
    from fixnorm_zoo.zoo.evaluate import evaluate

    measured = evaluate(str(run_dir), data=data)
    claim = float(summary["top1"])
    if abs(measured["top1"] - claim) > tolerance:
        raise PublishRefused(
            f"{run_dir}: re-evaluation gives top-1 {measured['top1']:.3f}% but the run claims {claim:.3f}% "
            f"(|difference| > {tolerance} point): not published. Were the weights or summary.json changed?"
        )
    return measured


def _upload(folder: Path, *, repo_id: str, private: bool, message: str) -> str:
    """Upload the staged repo folder as one commit; returns the commit id the registry pins."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    # delete_patterns: a re-publish leaves no file of the previous run behind
    commit = api.upload_folder(
        repo_id=repo_id, folder_path=str(folder), delete_patterns=["*"], commit_message=message
    )
    return commit.oid


def _registry_entry(
    existing, recipe, summary, measured, *, result: dict[str, Any], recipe_ref: str
) -> dict[str, Any]:
    """The registry entry of the published weights: the existing entry's fields, updated from the run."""
    base = existing.to_dict() if existing else {}
    same_model = existing is not None and (existing.architecture, existing.model_args) == (
        recipe.model,
        recipe.model_args,
    )
    entry = {
        **base,
        "name": result["name"],
        "architecture": recipe.model,
        "dataset": recipe.dataset,
        "recipe": recipe_ref,
        "method": recipe.method,
        "status": "published",
        "model_args": recipe.model_args,
        "num_classes": recipe.num_classes,
        "in_chans": recipe.in_chans,
        "params_m": round(measured["param_count"], 3),
        "gmacs": base.get("gmacs") if same_model else None,  # derived fields of another model are not kept
        "eval_setting": {k: summary["eval_setting"][k] for k in summary["eval_setting"]},
        "top1": round(measured["top1"], 3),
        "top5": round(measured["top5"], 3),
        "eval_split": summary["eval_split"],
        "notes": base.get("notes", "") if same_model else "",
        "hub": {
            "repo_id": result["repo_id"],
            "revision": result["revision"],
            "filename": WEIGHTS_FILE,
            "size": result["size"],
            "sha256": result["sha256"],
            # the package ships the same bytes only if they are the same file (tools/bundle_weights.py bundles)
            "bundled": bool(base.get("hub", {}).get("bundled"))
            and base["hub"].get("sha256") == result["sha256"],
        },
    }
    return entry


def _read_summary(run_dir: Path) -> dict[str, Any]:
    try:
        return RunDir(run_dir).read_summary()
    except DataError as e:
        raise PublishRefused(str(e)) from e


def _recipe_ref(recipe, existing) -> str:
    """The shipped recipe a run was trained from (by its ``name`` field); else the existing entry's, when the run
    builds the same model; else a note that the card holds it. Never a local absolute path."""
    from fixnorm_zoo.recipe import shipped_recipe_for

    shipped = shipped_recipe_for(recipe.name)
    if shipped:
        return shipped
    same_model = existing is not None and existing.architecture == recipe.model
    if same_model and existing.model_args == recipe.model_args:
        return existing.recipe
    return f"{recipe.name} (the recipe as run is in the model card)"


class MirrorSlot:
    """One repo folder ``MIRROR/ORG/NAME`` being replaced, through a descriptor of ``MIRROR/ORG``.

    Why: a path checked before a 7-second re-evaluation can be a symlink by the time it is written (a folder outside
    the mirror would then be emptied and refilled). ``ORG`` is opened with ``O_NOFOLLOW`` (a symlink there is
    refused); the staging folder is made and written through ``/proc/self/fd`` of that descriptor, and the swap and
    the clean-up are ``dir_fd`` operations on it, so a later swap of any path component changes nothing. New folders
    get the umask's permissions (a shared mirror stays readable). Leftovers of a killed publish of the same repo
    (``.NAME.staging-PID``, ``.NAME.old-PID`` of a process that is gone) are recovered or removed first.
    """

    def __init__(self, mirror: Path, repo_id: str) -> None:
        org, self.name = check_repo_id(repo_id).split("/")
        root = Path(mirror)
        root.mkdir(parents=True, exist_ok=True)
        root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(org, 0o777, dir_fd=root_fd)
            try:
                self.fd = os.open(org, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=root_fd)
            except OSError as e:
                raise PublishRefused(
                    f"{root / org} is a symbolic link or not a folder: refusing to publish through it; replace it with "
                    "a real folder"
                ) from e
        finally:
            os.close(root_fd)
        self.path = root / org
        self.staging = f".{self.name}.staging-{os.getpid()}"
        self._recover_leftovers()

    def _entry(self, name: str) -> Path:
        return Path(f"/proc/self/fd/{self.fd}") / name

    def _exists(self, name: str) -> bool:
        try:
            os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def _recover_leftovers(self) -> None:
        for entry in os.listdir(self.fd):
            for kind in ("staging", "old"):
                prefix = f".{self.name}.{kind}-"
                if not entry.startswith(prefix) or not entry[len(prefix) :].isdigit():
                    continue
                pid = int(entry[len(prefix) :])
                if pid != os.getpid() and _alive(pid):
                    continue  # another publish of this repo is running: its files are its own
                if kind == "old" and not self._exists(self.name):
                    os.replace(entry, self.name, src_dir_fd=self.fd, dst_dir_fd=self.fd)  # killed mid-swap
                else:
                    shutil.rmtree(entry, dir_fd=self.fd, ignore_errors=True)

    def new_staging(self) -> Path:
        os.mkdir(self.staging, 0o777, dir_fd=self.fd)  # the umask applies, as for any new folder
        return self._entry(self.staging)

    def swap_in(self) -> None:
        """Staging -> ``NAME`` so that ``NAME`` always holds a whole repo: the old one renamed aside, the new one
        renamed in, the old one removed (a kill in between leaves one of the two, recovered by the next publish)."""
        old = f".{self.name}.old-{os.getpid()}"
        had_old = self._exists(self.name)
        if had_old:
            os.replace(self.name, old, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        try:
            os.replace(self.staging, self.name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        except BaseException:
            if had_old:
                os.replace(old, self.name, src_dir_fd=self.fd, dst_dir_fd=self.fd)
            raise
        if had_old:
            shutil.rmtree(old, dir_fd=self.fd, ignore_errors=True)

    def close(self) -> None:
        if self._exists(self.staging):
            shutil.rmtree(self.staging, dir_fd=self.fd, ignore_errors=True)
        os.close(self.fd)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_repo_folder_or_fail(run_dir: Path, folder: Path, **kwargs) -> None:
    """:func:`_write_repo_folder`, with safetensors' own I/O error (a full disk, say) raised as the OSError it is."""
    from fixnorm_zoo.utils.atomic import writer_errors_as_os_errors

    with writer_errors_as_os_errors(folder):
        _write_repo_folder(run_dir, folder, **kwargs)


def _write_repo_folder(
    run_dir: Path,
    folder: Path,
    *,
    recipe,
    summary,
    measured,
    repo_id,
    zoo_name,
    existing,
    twin,
    twin_name,
    eval_data,
    recipe_ref,
) -> None:
    from timm.models import save_for_hf

    from fixnorm_zoo.zoo.cards import render_repo_card
    from fixnorm_zoo.zoo.evaluate import load_run

    folder.mkdir(parents=True, exist_ok=True)
    model, eval_cfg, _ = load_run(run_dir)
    # config.json: the zoo's pretrained config only (the model was built with it as pretrained_cfg_overlay); the
    # data_config makes timm drop any test-time size of another checkpoint
    labels = model.pretrained_cfg.get("label_names")
    save_for_hf(
        model,
        str(folder),
        model_args=dict(recipe.model_args),
        safe_serialization=True,
        model_config={"label_names": list(labels)} if labels else None,
        data_config={k: eval_cfg[k] for k in EVAL_KEYS},
    )
    for pickle_file in folder.glob("*.bin"):  # never publish a pickle, whatever timm's defaults become
        pickle_file.unlink()
    shutil.copyfile(RunDir(run_dir).curves_file, folder / RunDir.CURVES)
    twin_row, comparison = None, None
    if twin is not None:
        twin_summary = _read_summary(twin)
        twin_row = {
            "name": f"{twin_name} ({twin_summary['method']}, run {twin.name})",
            "top1": f"{twin_summary['top1']:.2f}",
            "top5": f"{twin_summary['top5']:.2f}",
            "note": "the twin's recorded result, same recipe and budget",
        }
        from fixnorm_zoo.plots import method_pair, plot_comparison

        comparison = "fixnorm_vs_wd.png"
        plot_comparison(
            method_pair(
                {
                    recipe.method: RunDir(run_dir).read_history(),
                    twin_summary["method"]: RunDir(twin).read_history(),
                }
            ),
            folder / comparison,
            title=f"{zoo_name}: FixNorm vs weight decay",
        )
    _write_provenance_files(run_dir, folder, measured=measured, summary=summary)
    same_model = existing is not None and (existing.architecture, existing.model_args) == (
        recipe.model,
        recipe.model_args,
    )
    card = render_repo_card(
        folder,
        name=zoo_name,
        repo_id=repo_id,
        recipe_ref=recipe_ref,
        eval_split=summary["eval_split"],
        # GMACs and notes are the existing entry's only if it is the same model (a --replace may change it)
        gmacs=existing.gmacs if same_model else None,
        notes=existing.notes if same_model else "",
        paper_top1=existing.paper_top1 if existing else None,
        twin=twin_row,
        eval_data=eval_data.partition(":")[0],
        license=existing.license if existing else "apache-2.0",
    )
    (folder / "README.md").write_text(card)
    for name in (WEIGHTS_FILE, "config.json", "README.md", "curves.png", comparison, *PROVENANCE_FILES):
        if name and (folder / name).exists():
            (folder / name).chmod(0o644)  # what we wrote is readable by the mirror's users (timm writes 0600)


PROVENANCE_FILES = ("train_hparams.yaml", "log.jsonl", "results.csv", "provenance.json")
"""What each published repo carries besides the weights, so that its number can be traced (timm issue 1959,
mmpretrain 1954/789): the resolved recipe, the per-epoch log, the gate's measurement in timm's results-CSV columns,
and where it ran (code revision, library versions, hardware) for training and for the gate."""


def _write_provenance_files(
    run_dir: Path, folder: Path, *, measured: dict[str, Any], summary: dict[str, Any]
) -> None:
    from fixnorm_zoo.utils.provenance import provenance

    run = RunDir(run_dir)
    shutil.copyfile(run.recipe_file, folder / "train_hparams.yaml")
    shutil.copyfile(run.log_file, folder / "log.jsonl")
    record = {
        "training": summary.get("provenance"),
        "training_threads": summary.get("threads"),
        "train_time_s": summary.get("train_time_s"),
        "num_processes": summary.get("num_processes"),
        "evaluation": provenance(),
    }
    write_measurement_files(folder, measured=measured, record=record)


def write_measurement_files(folder: Path, *, measured: dict[str, Any], record: dict[str, Any]) -> None:
    """A release folder's ``results.csv`` (``measured`` in timm's results-CSV columns) and ``provenance.json``
    (``record``: where the training and the measurement ran), each written atomically.

    Why public: a release folder published before these files existed gets them from a fresh re-evaluation
    (``tools/refresh_release.py``) in the same form ``publish`` writes them.
    """
    import csv
    import io
    import json

    from fixnorm_zoo.engine.metrics import RESULTS_COLUMNS
    from fixnorm_zoo.utils.atomic import atomic_write_text

    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(RESULTS_COLUMNS)
    writer.writerow([measured[c] for c in RESULTS_COLUMNS])
    atomic_write_text(folder / "results.csv", table.getvalue(), mode=0o644)
    atomic_write_text(folder / "provenance.json", json.dumps(record, indent=2) + "\n", mode=0o644)
